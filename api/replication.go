package api

// Replication is the replication part of /readyz on a process reading a hot standby.
type Replication struct {
	// LagSeconds: how far replay trails the primary (0 while everything received is replayed).
	LagSeconds    float64 `json:"lagSeconds"`
	MaxLagSeconds float64 `json:"maxLagSeconds"`
	// LagBlocks is the primary's cursor minus the replica's, when the primary is known
	// (database.primary_url) and answers.
	LagBlocks    *int64 `json:"lagBlocks,omitempty"`
	PrimaryHead  *int64 `json:"primaryHead,omitempty"`
	ReplayPaused bool   `json:"replayPaused,omitempty"`
}
