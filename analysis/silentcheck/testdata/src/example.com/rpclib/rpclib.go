// Package rpclib is a client library's producer: it returns early, without a word, when
// it is closed. That is the library's own state, not a decision about the caller's
// message, and a caller handing a message to it is not handing it to a filter.
package rpclib

type Client struct{ closed bool }

func (c *Client) Produce(data []byte) {
	if c.closed || len(data) == 0 {
		return
	}
	c.send(data)
}

func (c *Client) send(b []byte) {}
