// Package consumer settles through the saver package's helpers.
package consumer

import (
	"log"
	"strconv"

	"example.com/queuedmod/queue"
	"example.com/queuedmod/saver"
)

type Sum struct {
	in    *queue.Queue
	total int
}

func (c *Sum) Run() {
	s := &saver.Saver[*Sum]{}
	for msg := range c.in.Messages() {
		n, err := strconv.Atoi(msg.Body)
		if err != nil {
			s.Drop(&msg, c, false) // want `silent path: branch "if err != nil" settles the message \(s.Drop, which settles msg with Nack without requeue\) without recording a decision`
			continue
		}
		if n < 0 {
			log.Printf("negative: %d", n)
			s.Drop(&msg, c, false)
			continue
		}
		if n > 1000 {
			s.Drop(&msg, c, true) // requeued: a retry
			continue
		}
		c.total += n
		s.Done(&msg, c)
	}
}
