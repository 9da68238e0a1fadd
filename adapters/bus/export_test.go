package bus

// BatchMessage lets the external tests build the messages of
// AddProjections' subscription.
var BatchMessage = batchMessage
