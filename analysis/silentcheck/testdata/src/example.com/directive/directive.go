// Package directive keeps deliberate drops quiet with //silentcheck:ok <reason>.
package directive

import "example.com/consumer"

func handle(m *consumer.Message) error {
	if m.Subject == "probe" {
		return nil //silentcheck:ok synthetic probes are counted by the gateway
	}
	if m.Subject == "replay" {
		//silentcheck:ok replays are accounted for by the reconciler
		return nil
	}
	if m.Subject == "" {
		return nil //silentcheck:ok // want `silentcheck:ok needs a reason` `silent path: branch "if m.Subject == \\"\\"" returns nil`
	}
	return nil
}
