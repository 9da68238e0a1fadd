package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// hs256 signs claims (a JSON object) as an HS256 JWT.
func hs256(secret, claims string) (string, error) {
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	if _, err := mac.Write([]byte(unsigned)); err != nil {
		return "", err
	}
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
