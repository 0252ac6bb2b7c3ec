// Encryption of parameters and results at rest: libsodium XChaCha20-Poly1305 (IETF AEAD).
// The key is 32 bytes, given as 64 hex digits or base64; it never leaves the process.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace queuer {

class Cipher {
  public:
    // Throws Error(Crypto) when the key text is not 32 bytes in hex or base64 (the message never
    // contains the key).
    explicit Cipher(std::string_view key_text);
    ~Cipher();
    Cipher(const Cipher&) = delete;
    Cipher& operator=(const Cipher&) = delete;

    // nonce (24 bytes) || ciphertext || tag (16 bytes)
    std::string seal(std::string_view plaintext) const;
    // Throws Error(Crypto) when the bytes were not sealed with this key.
    std::string open(std::string_view sealed, std::string_view what) const;

  private:
    std::array<unsigned char, 32> key_{};
};

// PostgreSQL bytea hex text ("\x0a0b...") to bytes and back.
std::string bytea_to_text(std::string_view bytes);
std::string bytea_from_text(std::string_view text);

// A random (version 4) UUID in text form.
std::string random_uuid();

}  // namespace queuer
