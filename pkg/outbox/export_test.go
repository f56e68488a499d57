package outbox

// SenderOf is the payload of o's NOTIFYs, for tests that notify as o's process would.
func SenderOf(o *Outbox) string { return o.sender }
