package config

import (
	"fmt"
	"net"
)

// validate checks what no single key can: rules between keys.
func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.KeyError(key, fmt.Errorf(format, args...)))
	}
	if len(c.RPC.HTTPURLs) == 0 {
		bad("rpc.http_url", "at least one HTTP endpoint is needed (eth_getLogs, receipts, calls)")
	}
	if len(c.RPC.WSURLs) > len(c.RPC.HTTPURLs) {
		bad("rpc.ws_url", "%d WebSocket URLs for %d HTTP URLs: ws_url[i] pairs with http_url[i], give each its HTTP URL",
			len(c.RPC.WSURLs), len(c.RPC.HTTPURLs))
	}
	if c.Backfill.RangeBlocks > c.Backfill.MaxRangeBlocks {
		bad("backfill.range_blocks", "%d is above backfill.max_range_blocks %d", c.Backfill.RangeBlocks, c.Backfill.MaxRangeBlocks)
	}
	seen := map[string]string{}
	names := []string{"event_factory", "marketplace", "poap_attendance", "incentive_manager"}
	for i, ct := range c.Contracts.All() {
		a := ct.Address.Hex()
		if other, ok := seen[a]; ok {
			bad("contracts."+names[i]+".address", "same address as contracts.%s.address", other)
		}
		seen[a] = names[i]
	}
	if c.Subscriptions.Workers > c.API.MaxConcurrent {
		bad("subscriptions.workers", "%d is above api.max_concurrent %d: subscriptions would starve queries", c.Subscriptions.Workers, c.API.MaxConcurrent)
	}
	if c.Metrics.Listen != "" && sameListen(c.Metrics.Listen, c.API.Listen) {
		bad("metrics.listen", "%s is also api.listen; metrics need a listener of their own", c.Metrics.Listen)
	}
	return errs
}

func sameListen(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}
