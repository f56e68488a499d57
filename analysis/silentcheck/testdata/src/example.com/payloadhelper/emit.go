package payloadhelper

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
)

// emit posts the payload on and retries; a 2xx answer is the work done, so its return
// nil is no decision to skip anything.
func emit(c *http.Client, url string, data []byte) error {
	var last error
	for i := 0; i < 3; i++ {
		resp, err := c.Post(url, "application/json", bytes.NewReader(data))
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("emit: status %d", resp.StatusCode)
	}
	return last
}

// emitOK is the same with the status named, tested the other way round.
func emitOK(c *http.Client, url string, data []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if http.StatusOK != resp.StatusCode {
		return fmt.Errorf("emit: status %d", resp.StatusCode)
	} else {
		return nil
	}
}

// emitIgnoring takes a 404 for success: the payload was refused, and nothing says so.
func emitIgnoring(c *http.Client, url string, data []byte) error { // want emitIgnoring:"drops at emit.go:52"
	resp, err := c.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("emit: status %d", resp.StatusCode)
	}
	return nil
}

func forward(c *http.Client, cons jetstream.Consumer) {
	cons.Consume(func(m jetstream.Msg) {
		if err := emit(c, "http://hub/emit", m.Data()); err != nil {
			m.Nak()
			return
		}
		if err := emitOK(c, "http://hub/emit", m.Data()); err != nil {
			m.Nak()
			return
		}
		if err := emitIgnoring(c, "http://hub/emit", m.Data()); err != nil { // want `silent path: emitIgnoring is handed the message \(or its payload\) and returns without a trace at emit.go:52`
			m.Nak()
			return
		}
		m.Ack()
	})
}
