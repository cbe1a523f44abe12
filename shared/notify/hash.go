package notify

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashID returns a short, stable hash of an identifier (an openid) for logs:
// enough to correlate lines, never the identifier itself.
func HashID(id string) string {
	if id == "" {
		return ""
	}
	var buf [128]byte // no allocation for the usual openid or userId
	sum := sha256.Sum256(append(append(buf[:0], "wxnotify-log\x00"...), id...))
	return hex.EncodeToString(sum[:6])
}
