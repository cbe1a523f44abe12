package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecrypt feeds Decrypt arbitrary Encrypt fields and, since random ciphertexts rarely get past the
// padding check, also arbitrary plaintexts sealed with the right key, which reach the length and appid
// checks. Decrypt must never panic, fail only with ErrPushDecrypt errors, and return exactly the message
// a well-formed plaintext carries.
func FuzzDecrypt(f *testing.F) {
	c := pushTestCrypter(f, pushTestAppID, pushTestAESKey, pushTestAESKey2)
	for _, msg := range []string{"", "hello", "<xml><Event>x</Event></xml>"} {
		enc, err := c.Encrypt([]byte(msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, pushTestPlain(uint32(len(msg)), msg, pushTestAppID, nil))
	}
	f.Add(pushTestReadEnvelope(f, "push-compatible-sample.xml").Encrypt, []byte{})
	f.Add("", pushTestPlain(0xFFFFFFFF, "x", pushTestAppID, nil))
	f.Add("!!!!", bytes.Repeat([]byte{32}, 32))
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 48)), pushTestPlain(3, "abc", "wx", []byte{9, 9}))

	f.Fuzz(func(t *testing.T, encrypted string, plain []byte) {
		if _, err := c.Decrypt(encrypted); err != nil && !errors.Is(err, ErrPushDecrypt) {
			t.Fatalf("Decrypt(%q) = %v, want an ErrPushDecrypt error", encrypted, err)
		}

		// Pad plain as Encrypt would when it is short of a whole block, so that it reaches the checks.
		if len(plain) == 0 || len(plain)%16 != 0 {
			pad := 32 - len(plain)%32
			plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
		}
		got, err := c.Decrypt(pushTestSeal(t, pushTestAESKey, plain))
		want, ok := pushFuzzOpen(plain)
		switch {
		case ok && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("Decrypt of a well-formed plaintext = %q, %v; want %q", got, err, want)
		case !ok && err == nil:
			t.Fatalf("Decrypt of a malformed plaintext = %q, nil; want an error", got)
		case err != nil && !errors.Is(err, ErrPushDecrypt):
			t.Fatalf("got %v, want an ErrPushDecrypt error", err)
		}
	})
}

// pushFuzzOpen is a plain reading of the plaintext format, to compare Decrypt against.
func pushFuzzOpen(plain []byte) ([]byte, bool) {
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > 32 || pad > len(plain) {
		return nil, false
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, false
		}
	}
	content := plain[:len(plain)-pad]
	if len(content) < 20 {
		return nil, false
	}
	n := int64(binary.BigEndian.Uint32(content[16:20]))
	if n > int64(len(content)-20) || string(content[20+n:]) != pushTestAppID {
		return nil, false
	}
	return content[20 : 20+n], true
}
