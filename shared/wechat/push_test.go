package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// The sample of Tencent's WXBizMsgCrypt SDKs: token, EncodingAESKey and appid, and a push encrypted
// with them (testdata/push-compatible-sample.xml) with its msg_signature.
const (
	pushTestToken     = "spamtest"
	pushTestAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	pushTestAppID     = "wx2c2769f8efd9abc2"
	pushTestTimestamp = "1409735669"
	pushTestNonce     = "1320562132"
	pushTestMsgSig    = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
	// pushTestAESKey2 is a second key, for rotations.
	pushTestAESKey2 = "Zyxwvutsrqponmlkjihgfedcba9876543210ZYXWVUT"
)

func TestSignature(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		// WeChat's known answer of the URL verification (docs/wechat.md#message-push).
		{"KnownAnswer", Signature("AAAAA", "1714036504", "1514711492"), "f464b24fc39322e44b38aa78f5edd27bd1441696"},
		{"OrderOfParts", Signature("AAAAA", "1514711492", "1714036504"), "f464b24fc39322e44b38aa78f5edd27bd1441696"},
		{"MsgSignatureKnownAnswer", Signature(pushTestToken, pushTestTimestamp, pushTestNonce,
			pushTestReadEnvelope(t, "push-compatible-sample.xml").Encrypt), pushTestMsgSig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	const token, ts, nonce = "AAAAA", "1714036504", "1514711492"
	const sig = "f464b24fc39322e44b38aa78f5edd27bd1441696"
	tests := []struct {
		name                        string
		token, sig, timestamp, nonc string
		want                        bool
	}{
		{"OK", token, sig, ts, nonce, true},
		{"UpperCase", token, strings.ToUpper(sig), ts, nonce, true},
		{"WrongToken", "AAAAB", sig, ts, nonce, false},
		{"WrongTimestamp", token, sig, "1714036505", nonce, false},
		{"WrongNonce", token, sig, ts, "1514711493", false},
		{"Truncated", token, sig[:39], ts, nonce, false},
		{"Longer", token, sig + "0", ts, nonce, false},
		{"EmptySignature", token, "", ts, nonce, false},
		{"EmptyToken", "", Signature("", ts, nonce), ts, nonce, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.token, tt.sig, tt.timestamp, tt.nonc); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyMsgSignature(t *testing.T) {
	encrypt := pushTestReadEnvelope(t, "push-compatible-sample.xml").Encrypt
	tampered := []byte(encrypt)
	tampered[10] ^= 1
	tests := []struct {
		name                       string
		token, sig, encrypt, nonce string
		want                       bool
	}{
		{"OK", pushTestToken, pushTestMsgSig, encrypt, pushTestNonce, true},
		{"TamperedEncrypt", pushTestToken, pushTestMsgSig, string(tampered), pushTestNonce, false},
		{"WrongToken", "spamtesT", pushTestMsgSig, encrypt, pushTestNonce, false},
		{"WrongNonce", pushTestToken, pushTestMsgSig, encrypt, "1320562133", false},
		{"PlainSignature", pushTestToken, Signature(pushTestToken, pushTestTimestamp, pushTestNonce), encrypt,
			pushTestNonce, false},
		{"EmptyToken", "", Signature("", pushTestTimestamp, pushTestNonce, encrypt), encrypt, pushTestNonce, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyMsgSignature(tt.token, tt.sig, pushTestTimestamp, tt.nonce, tt.encrypt); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewCrypter(t *testing.T) {
	tests := []struct {
		name, appID, key string
		previous         []string
		wantErr          string // "" for success
	}{
		{"OK", pushTestAppID, pushTestAESKey, nil, ""},
		{"PreviousKeys", pushTestAppID, pushTestAESKey, []string{pushTestAESKey2, ""}, ""},
		{"NoAppID", "", pushTestAESKey, nil, "wechat: push crypter needs an appid"},
		{"ShortKey", pushTestAppID, pushTestAESKey[:42], nil, "wechat: EncodingAESKey has 42 characters, want 43"},
		{"LongKey", pushTestAppID, pushTestAESKey + "=", nil, "wechat: EncodingAESKey has 44 characters, want 43"},
		{"EmptyKey", pushTestAppID, "", nil, "wechat: EncodingAESKey has 0 characters, want 43"},
		{"NotBase64", pushTestAppID, "!" + pushTestAESKey[1:], nil, "wechat: EncodingAESKey is not base64"},
		{"BadPreviousKey", pushTestAppID, pushTestAESKey, []string{pushTestAESKey2, "", "short"},
			"wechat: previous EncodingAESKey #3 has 5 characters, want 43"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCrypter(tt.appID, tt.key, tt.previous...)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("got %v, %v; want a Crypter", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil error, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("got %q, want %q", err.Error(), tt.wantErr)
			}
		})
	}
}

// pushTestCrypter returns NewCrypter(appID, key, previous...), failing the test on an error.
func pushTestCrypter(tb testing.TB, appID, key string, previous ...string) *Crypter {
	tb.Helper()
	c, err := NewCrypter(appID, key, previous...)
	if err != nil {
		tb.Fatalf("NewCrypter: %v", err)
	}
	return c
}

func TestCrypterEncryptKnownAnswer(t *testing.T) {
	// The sample of Tencent's Java SDK test: fixed random bytes give a known ciphertext.
	c := pushTestCrypter(t, "wxb11529c136998cb6", pushTestAESKey)
	c.Rand = strings.NewReader("aaaabbbbccccdddd")
	got, err := c.Encrypt([]byte("我是中文abcd123"))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	const want = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestCrypterDecryptKnownAnswer(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	got, err := c.Decrypt(pushTestReadEnvelope(t, "push-compatible-sample.xml").Encrypt)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	want := "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n" +
		"<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n" +
		"<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n" +
		"<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCrypterRoundTrip(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	// 20 header bytes + 18 appid bytes: a message of 26 bytes fills two blocks exactly (padding 32).
	for _, n := range []int{0, 1, 25, 26, 27, 57, 58, 100, 4096} {
		msg := bytes.Repeat([]byte{'x'}, n)
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatalf("Encrypt(%d bytes): %v", n, err)
		}
		if raw, _ := base64.StdEncoding.DecodeString(enc); len(raw)%32 != 0 {
			t.Errorf("ciphertext of %d bytes for %d, want a multiple of 32", len(raw), n)
		}
		got, err := c.Decrypt(enc)
		if err != nil {
			t.Fatalf("Decrypt(Encrypt(%d bytes)): %v", n, err)
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("got %q, want %q", got, msg)
		}
	}
}

func TestCrypterRandomness(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	a, errA := c.Encrypt([]byte("same"))
	b, errB := c.Encrypt([]byte("same"))
	if errA != nil || errB != nil {
		t.Fatalf("Encrypt: %v, %v", errA, errB)
	}
	if a == b {
		t.Errorf("two encryptions of one message are equal (%s), want different random prefixes", a)
	}
}

func TestCrypterRandFailure(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	boom := errors.New("entropy exhausted")
	c.Rand = iotest.ErrReader(boom)
	if _, err := c.Encrypt([]byte("x")); !errors.Is(err, boom) {
		t.Errorf("got %v, want an error wrapping %v", err, boom)
	}
	c.Rand = strings.NewReader("short")
	if _, err := c.Encrypt([]byte("x")); err == nil {
		t.Error("got nil error from a source with 5 bytes, want an error")
	}
}

func TestCrypterKeyRotation(t *testing.T) {
	old := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	rotated := pushTestCrypter(t, pushTestAppID, pushTestAESKey2, pushTestAESKey)
	msg := []byte("<xml><Event><![CDATA[subscribe_msg_popup_event]]></Event></xml>")

	encOld, err := old.Encrypt(msg)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if got, err := rotated.Decrypt(encOld); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("rotated.Decrypt(old key) = %q, %v; want %q", got, err, msg)
	}

	encNew, err := rotated.Encrypt(msg)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if got, err := rotated.Decrypt(encNew); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("rotated.Decrypt(new key) = %q, %v; want %q", got, err, msg)
	}
	if _, err := old.Decrypt(encNew); !errors.Is(err, ErrPushDecrypt) {
		t.Errorf("old.Decrypt(new key) = %v, want ErrPushDecrypt: the new key is not the old crypter's", err)
	}
}

func TestCrypterAppIDMismatch(t *testing.T) {
	theirs := pushTestCrypter(t, "wx0000000000000000", pushTestAESKey)
	ours := pushTestCrypter(t, pushTestAppID, pushTestAESKey2, pushTestAESKey)
	enc, err := theirs.Encrypt([]byte("hello"))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	_, err = ours.Decrypt(enc)
	if !errors.Is(err, ErrAppIDMismatch) || !errors.Is(err, ErrPushDecrypt) {
		t.Errorf("got %v, want ErrAppIDMismatch (also matching ErrPushDecrypt)", err)
	}
}

// pushTestSeal encrypts plain (a whole number of AES blocks) as Crypter does, without adding anything.
func pushTestSeal(tb testing.TB, key string, plain []byte) string {
	tb.Helper()
	k, err := base64.StdEncoding.DecodeString(key + "=")
	if err != nil {
		tb.Fatalf("decode key: %v", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		tb.Fatalf("aes: %v", err)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, k[:aes.BlockSize]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// pushTestPlain builds random bytes + length + msg + appid + padding bytes as given.
func pushTestPlain(length uint32, msg, appID string, padding []byte) []byte {
	b := append(bytes.Repeat([]byte{'r'}, 16), binary.BigEndian.AppendUint32(nil, length)...)
	b = append(b, msg...)
	b = append(b, appID...)
	return append(b, padding...)
}

func TestCrypterDecryptRejects(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	valid, err := c.Encrypt([]byte("hello"))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(valid)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 0x80
		return base64.StdEncoding.EncodeToString(b)
	}
	// A plaintext of 64 bytes: 16 random + 4 length + 5 message + 18 appid = 43, so 21 bytes of padding.
	pad := func(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }
	seal := func(p []byte) string { return pushTestSeal(t, pushTestAESKey, p) }
	tests := []struct {
		name, encrypted string
		want            error
	}{
		{"Empty", "", ErrBadCiphertext},
		{"NotBase64", "!!!!", ErrBadCiphertext},
		{"ThreeBytes", "YWJj", ErrBadCiphertext},
		{"FifteenBytes", base64.StdEncoding.EncodeToString(make([]byte, 15)), ErrBadCiphertext},
		{"SeventeenBytes", base64.StdEncoding.EncodeToString(make([]byte, 17)), ErrBadCiphertext},
		{"Truncated", base64.StdEncoding.EncodeToString(raw[:len(raw)-16]), ErrPushDecrypt},
		{"FlippedLastBlock", flip(len(raw) - 1), ErrPushDecrypt},
		{"FlippedLengthField", flip(0), ErrBadMsgLength}, // CBC: flips bit 7 of plaintext byte 16
		{"PadZero", seal(pushTestPlain(5, "hello", pushTestAppID, append(pad(20, 21), 0))), ErrBadPadding},
		{"PadTooLarge", seal(pushTestPlain(5, "hello", pushTestAppID, pad(21, 33))), ErrBadPadding},
		{"PadInconsistent", seal(pushTestPlain(5, "hello", pushTestAppID, append(pad(20, 7), 21))), ErrBadPadding},
		{"LengthHuge", seal(pushTestPlain(0xFFFFFFFF, "hello", pushTestAppID, pad(21, 21))), ErrBadMsgLength},
		{"LengthPastEnd", seal(pushTestPlain(24, "hello", pushTestAppID, pad(21, 21))), ErrBadMsgLength},
		{"LengthShort", seal(pushTestPlain(4, "hello", pushTestAppID, pad(21, 21))), ErrAppIDMismatch},
		{"NoHeader", seal(append(bytes.Repeat([]byte{'r'}, 16), pad(16, 16)...)), ErrBadMsgLength},
		{"AllPadding", seal(pad(32, 32)), ErrBadMsgLength},
		{"NoAppID", seal(pushTestPlain(5, "hello", "", pad(7, 7))), ErrAppIDMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Decrypt(tt.encrypted)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %q, %v; want %v", got, err, tt.want)
			}
			if !errors.Is(err, ErrPushDecrypt) {
				t.Errorf("got %v, want it to match ErrPushDecrypt", err)
			}
		})
	}
}

func TestCrypterConcurrent(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey, pushTestAESKey2)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte('a' + i)}, 100+i)
			for range 50 {
				enc, err := c.Encrypt(msg)
				if err != nil {
					t.Errorf("Encrypt: %v", err)
					return
				}
				got, err := c.Decrypt(enc)
				if err != nil || !bytes.Equal(got, msg) {
					t.Errorf("Decrypt = %q, %v; want %q", got, err, msg)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestPushSafeModeTestdata decrypts the safe-mode envelopes of testdata, encrypted with the sample key,
// and parses the events inside.
func TestPushSafeModeTestdata(t *testing.T) {
	c := pushTestCrypter(t, pushTestAppID, pushTestAESKey)
	tests := []struct {
		file, plainFile string
		json            bool
	}{
		{"push-encrypted-popup-event.xml", "push-popup-event.xml", false},
		{"push-encrypted-sent-event.json", "push-sent-event.json", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			env := pushTestReadEnvelope(t, tt.file)
			if env.JSON != tt.json || env.ToUserName != "gh_0a1b2c3d4e5f" {
				t.Errorf("got %+v, want JSON %v and ToUserName gh_0a1b2c3d4e5f", env, tt.json)
			}
			plain, err := c.Decrypt(env.Encrypt)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", tt.plainFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, want) {
				t.Errorf("got %q, want the content of %s", plain, tt.plainFile)
			}
			if _, err := ParsePushEvent(plain); err != nil {
				t.Errorf("ParsePushEvent: %v", err)
			}
		})
	}
}

// pushTestReadEnvelope parses a testdata file with ParsePushEnvelope.
func pushTestReadEnvelope(tb testing.TB, name string) PushEnvelope {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	env, err := ParsePushEnvelope(b)
	if err != nil {
		tb.Fatalf("ParsePushEnvelope(%s): %v", name, err)
	}
	return env
}
