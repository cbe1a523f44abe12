package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- WeChat signs pushes with SHA-1; the protocol is not ours to choose
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Message push (消息推送) signatures and encryption.
// Docs: https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html

// Errors of Crypter.Decrypt. Each of ErrBadCiphertext, ErrBadPadding, ErrBadMsgLength and
// ErrAppIDMismatch also matches ErrPushDecrypt with errors.Is.
var (
	ErrPushDecrypt = errors.New("wechat: cannot decrypt push message")
	// ErrBadCiphertext: not base64, empty, or not a whole number of AES blocks.
	ErrBadCiphertext = fmt.Errorf("%w: malformed ciphertext", ErrPushDecrypt)
	// ErrBadPadding: the PKCS#7 padding is invalid, typically because the key is wrong.
	ErrBadPadding = fmt.Errorf("%w: bad padding", ErrPushDecrypt)
	// ErrBadMsgLength: the message length field does not fit the plaintext.
	ErrBadMsgLength = fmt.Errorf("%w: bad message length", ErrPushDecrypt)
	// ErrAppIDMismatch: the message decrypted, but it was encrypted for another appid.
	ErrAppIDMismatch = fmt.Errorf("%w: appid mismatch", ErrPushDecrypt)
)

const (
	pushKeyChars  = 43 // length of an EncodingAESKey
	pushPadBlock  = 32 // WeChat pads to 32 bytes, twice the AES block
	pushRandBytes = 16
	pushHeader    = pushRandBytes + 4 // random bytes and the message length
)

// Signature returns the lowercase hex SHA-1 of token and parts, sorted in byte order and concatenated.
// With parts timestamp and nonce it is the signature of WeChat's push requests; with timestamp, nonce
// and the Encrypt field it is their msg_signature.
func Signature(token string, parts ...string) string {
	all := make([]string, 0, len(parts)+1)
	all = append(all, token)
	all = append(all, parts...)
	slices.Sort(all)
	sum := sha1.Sum([]byte(strings.Join(all, ""))) // #nosec G401 -- the push signature of WeChat's protocol
	return hex.EncodeToString(sum[:])
}

// VerifySignature reports whether signature (hex, any case) is Signature(token, timestamp, nonce), the
// check of the URL verification GET and of plaintext pushes, comparing in constant time. It is false
// when token or signature is empty. It does not judge how old timestamp is.
func VerifySignature(token, signature, timestamp, nonce string) bool {
	return pushVerify(token, signature, timestamp, nonce)
}

// VerifyMsgSignature reports whether msgSignature (hex, any case) is Signature(token, timestamp, nonce,
// encrypt), the check of safe-mode pushes, comparing in constant time. It is false when token or
// msgSignature is empty. Check it before Decrypt.
func VerifyMsgSignature(token, msgSignature, timestamp, nonce, encrypt string) bool {
	return pushVerify(token, msgSignature, timestamp, nonce, encrypt)
}

func pushVerify(token, signature string, parts ...string) bool {
	if token == "" || signature == "" {
		return false
	}
	want := Signature(token, parts...)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// Crypter encrypts and decrypts safe-mode push messages of one mini program: AES-256-CBC with the key
// decoded from the EncodingAESKey and the key's first 16 bytes as IV, over 16 random bytes, the
// message length (4 bytes, big-endian), the message and the appid, PKCS#7-padded to 32-byte blocks,
// in standard base64. A Crypter is safe for concurrent use if Rand is (crypto/rand.Reader is); set
// Rand before first use.
type Crypter struct {
	// Rand is the source of the 16 random bytes Encrypt puts before each message; nil means
	// crypto/rand.Reader. Tests set a fixed source to get known answers.
	Rand io.Reader

	appID []byte
	keys  []pushKey // the current key first, then the previous ones
}

type pushKey struct {
	block cipher.Block
	iv    []byte
}

// NewCrypter returns a Crypter for appID with the current encodingAESKey and, for a rotation, the keys
// used before it (empty strings among them are ignored, so an unset setting can be passed as is).
// Encrypt uses the current key; Decrypt tries the current key, then the previous ones in order. Each
// key must be 43 base64 characters (32 bytes once decoded with a trailing "="); the error names the bad
// key without echoing it.
func NewCrypter(appID, encodingAESKey string, previousKeys ...string) (*Crypter, error) {
	if appID == "" {
		return nil, errors.New("wechat: push crypter needs an appid")
	}
	c := &Crypter{appID: []byte(appID)}
	k, err := pushNewKey(encodingAESKey)
	if err != nil {
		return nil, fmt.Errorf("wechat: EncodingAESKey %w", err)
	}
	c.keys = append(c.keys, k)
	for i, prev := range previousKeys {
		if prev == "" {
			continue
		}
		k, err := pushNewKey(prev)
		if err != nil {
			return nil, fmt.Errorf("wechat: previous EncodingAESKey #%d %w", i+1, err)
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

// pushNewKey decodes an EncodingAESKey; its errors read after "EncodingAESKey".
func pushNewKey(encodingAESKey string) (pushKey, error) {
	if n := len(encodingAESKey); n != pushKeyChars {
		return pushKey{}, fmt.Errorf("has %d characters, want %d", n, pushKeyChars)
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return pushKey{}, errors.New("is not base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return pushKey{}, fmt.Errorf("is not an AES key: %w", err)
	}
	return pushKey{block: block, iv: key[:aes.BlockSize]}, nil
}

// Encrypt returns msg encrypted with the current key, in base64, as the Encrypt field of a safe-mode push.
// It fails only when Rand fails or msg is 4 GiB or more.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", errors.New("wechat: push message too large to encrypt")
	}
	n := pushHeader + len(msg) + len(c.appID)
	pad := pushPadBlock - n%pushPadBlock // 1..32
	buf := make([]byte, n+pad)
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, buf[:pushRandBytes]); err != nil {
		return "", fmt.Errorf("wechat: random bytes for push message: %w", err)
	}
	binary.BigEndian.PutUint32(buf[pushRandBytes:pushHeader], uint32(len(msg)))
	copy(buf[pushHeader:], msg)
	copy(buf[pushHeader+len(msg):], c.appID)
	for i := n; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	k := c.keys[0]
	cipher.NewCBCEncrypter(k.block, k.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt returns the message inside encrypted (the Encrypt field of a safe-mode push), trying the
// current key and then the previous ones. It fails with an error matching ErrBadCiphertext,
// ErrBadPadding, ErrBadMsgLength or ErrAppIDMismatch (all matching ErrPushDecrypt); when every key
// fails, the error is that of the key that got furthest (a right key with a foreign appid reports
// ErrAppIDMismatch). It never panics, whatever the input.
//
// Decrypt does not authenticate the message (CBC without a MAC lets a bit flip through to the
// plaintext): the msg_signature does, so check VerifyMsgSignature first, and never show the errors to
// whoever sent the push.
func (c *Crypter) Decrypt(encrypted string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadCiphertext)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of blocks", ErrBadCiphertext, len(ct))
	}
	var (
		best     error
		bestRank = -1
	)
	plain := make([]byte, len(ct))
	for _, k := range c.keys {
		msg, rank, err := c.open(k, ct, plain)
		if err == nil {
			return msg, nil
		}
		if rank > bestRank {
			best, bestRank = err, rank
		}
	}
	return nil, best
}

// open decrypts ct with k into plain (of the same length) and checks the result; rank tells how far the
// checks went, for Decrypt to pick the most telling error.
func (c *Crypter) open(k pushKey, ct, plain []byte) (msg []byte, rank int, err error) {
	cipher.NewCBCDecrypter(k.block, k.iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > pushPadBlock || pad > len(plain) {
		return nil, 0, ErrBadPadding
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, 0, ErrBadPadding
		}
	}
	content := plain[:len(plain)-pad]
	if len(content) < pushHeader {
		return nil, 1, ErrBadMsgLength
	}
	n := uint64(binary.BigEndian.Uint32(content[pushRandBytes:pushHeader]))
	if n > uint64(len(content)-pushHeader) {
		return nil, 1, ErrBadMsgLength
	}
	end := pushHeader + int(n)
	if appID := content[end:]; !bytes.Equal(appID, c.appID) {
		return nil, 2, fmt.Errorf("%w: got %q", ErrAppIDMismatch, kwShorten(string(appID), 32))
	}
	return content[pushHeader:end:end], 3, nil
}
