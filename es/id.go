package es

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// NewID returns a new random UUID (version 7: time-ordered, so that stores
// index new IDs near each other).
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never returns an error.
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return formatUUID(u)
}

// DeriveID returns a UUID determined by name and n: the same inputs give the
// same ID. The command handler derives event IDs from the command ID this
// way, so that a retried command is recognised by the store.
func DeriveID(name string, n int) string {
	h := sha256.Sum256([]byte("esgo.dev/es:" + name + ":" + strconv.Itoa(n)))
	var u [16]byte
	copy(u[:], h[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8: custom (RFC 9562)
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ValidID reports whether s is a UUID in its canonical textual form:
// 8-4-4-4-12 lower-case hexadecimal digits, as [NewID] makes them. Upper case
// is refused so that every store hands back exactly the ID it was given.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// validName reports whether s can name a stream, a subscription or a
// process on every store: 1 to MaxIDLength bytes of UTF-8 without NUL.
func validName(s string) bool {
	return s != "" && len(s) <= MaxIDLength && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
