package gate

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
)

// ProxyTrust says which X-Forwarded-For entries the gate believes. A client
// can send any X-Forwarded-For it likes; only the entries appended by proxies
// the gate trusts name real addresses, so the client's address is found by
// walking the header from the right, past trusted proxies only.
type ProxyTrust struct {
	// Hops is how many proxies in front of the gateway append to
	// X-Forwarded-For (a cloud load balancer is one): that many entries,
	// from the right, are proxies, and the next one is the client.
	Hops int
	// CIDRs are the addresses of proxies trusted wherever they appear.
	CIDRs []netip.Prefix
}

// ClientIP is the address of req's client. For forward-auth the gateway
// appends the address it saw to X-Forwarded-For (without it, the gateway
// itself, req.Peer, is the client); for ext_authz req.Peer is that address.
// From there each trusted hop steps one entry to the left.
func (t ProxyTrust) ClientIP(req *Request) netip.Addr {
	xff := ""
	if req.Header != nil {
		xff = req.Header.Get("X-Forwarded-For")
	}
	client := req.Peer
	if last, rest, ok := lastAddr(xff); ok && (!req.PeerIsClient || last == client) {
		// The gateway's own entry: what it saw.
		client, xff = last, rest
	}
	for hops := 0; hops < t.Hops || t.trusted(client); hops++ {
		last, rest, ok := lastAddr(xff)
		if !ok {
			break
		}
		client, xff = last, rest
	}
	return client
}

func (t ProxyTrust) trusted(a netip.Addr) bool {
	for _, p := range t.CIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// lastAddr splits the last address off a comma-separated X-Forwarded-For.
// An entry that is no address (or an empty header) ends the walk.
func lastAddr(xff string) (netip.Addr, string, bool) {
	if xff == "" {
		return netip.Addr{}, "", false
	}
	rest, entry := "", xff
	if i := strings.LastIndexByte(xff, ','); i >= 0 {
		rest, entry = xff[:i], xff[i+1:]
	}
	entry = strings.TrimSpace(entry)
	if a, err := netip.ParseAddr(entry); err == nil {
		return a.Unmap(), rest, true
	}
	if ap, err := netip.ParseAddrPort(entry); err == nil {
		return ap.Addr().Unmap(), rest, true
	}
	return netip.Addr{}, "", false
}

// Networks says how many leading bits of a client address are counted as
// one caller by rate limits keyed by ip: one IPv4 address (32), one IPv6
// /64 (what a host is usually given, so rotating addresses within it gains
// nothing). Zero takes those defaults.
type Networks struct {
	IPv4Bits, IPv6Bits int
}

// DefaultNetworks are the networks counted as one caller unless told
// otherwise.
var DefaultNetworks = Networks{IPv4Bits: 32, IPv6Bits: 64}

// Of is a's network as a rate-limit key: the address with the bits past
// the prefix cleared. It allocates nothing.
func (n Networks) Of(a netip.Addr) netip.Addr {
	bits := cmp.Or(n.IPv4Bits, DefaultNetworks.IPv4Bits)
	if a.Is6() {
		bits = cmp.Or(n.IPv6Bits, DefaultNetworks.IPv6Bits)
	}
	if p, err := a.Prefix(bits); err == nil {
		return p.Addr()
	}
	return a
}

// Validate says what is wrong with n, for the gate's flags.
func (n Networks) Validate() error {
	if n.IPv4Bits < 0 || n.IPv4Bits > 32 {
		return fmt.Errorf("IPv4 prefix length %d: write 1 to 32 (32 counts each address)", n.IPv4Bits)
	}
	if n.IPv6Bits < 0 || n.IPv6Bits > 128 {
		return fmt.Errorf("IPv6 prefix length %d: write 1 to 128 (64 counts each /64, 128 each address)", n.IPv6Bits)
	}
	return nil
}
