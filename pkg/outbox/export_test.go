package outbox

// SenderOf is the payload of o's NOTIFYs, for tests that notify as o's process would.
func SenderOf(o *Outbox) string { return o.sender }

// ChannelOf is the LISTEN/NOTIFY channel of o's table.
func ChannelOf(o *Outbox) string { return o.channel }
