// libsodium XChaCha20-Poly1305 sealing, bytea text codec, random UUIDs.
#include "queuer/crypto.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <cctype>
#include <stdexcept>

#include "queuer/error.hpp"

namespace queuer {

namespace {
void init_sodium() {
    static const bool ok = sodium_init() >= 0;
    if (!ok) throw Error(ErrorKind::Crypto, "libsodium failed to initialise");
}
}  // namespace

Cipher::Cipher(std::string_view key_text) {
    init_sodium();
    std::string_view k = key_text;
    while (!k.empty() && std::isspace(static_cast<unsigned char>(k.back()))) k.remove_suffix(1);
    size_t len = 0;
    bool ok = false;
    if (k.size() == 64) {
        ok = sodium_hex2bin(key_.data(), key_.size(), k.data(), k.size(), nullptr, &len, nullptr) ==
                 0 &&
             len == 32;
    }
    if (!ok) {
        for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_URLSAFE,
                            sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
            if (sodium_base642bin(key_.data(), key_.size(), k.data(), k.size(), nullptr, &len,
                                  nullptr, variant) == 0 &&
                len == 32) {
                ok = true;
                break;
            }
        }
    }
    if (!ok) {
        sodium_memzero(key_.data(), key_.size());
        throw Error(ErrorKind::Crypto,
                    fmt::format("the encryption key must be 32 bytes written as 64 hex digits or "
                                "base64 (got {} characters); generate one with "
                                "`head -c32 /dev/urandom | base64`",
                                k.size()));
    }
}

Cipher::~Cipher() {
    sodium_memzero(key_.data(), key_.size());
}

std::string Cipher::seal(std::string_view plain) const {
    constexpr size_t nlen = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    std::string out(nlen + plain.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    randombytes_buf(o, nlen);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(o + nlen, &clen,
                                               reinterpret_cast<const unsigned char*>(plain.data()),
                                               plain.size(), nullptr, 0, nullptr, o, key_.data());
    out.resize(nlen + clen);
    return out;
}

std::string Cipher::open(std::string_view sealed, std::string_view what) const {
    constexpr size_t nlen = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    constexpr size_t alen = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if (sealed.size() < nlen + alen)
        throw Error(ErrorKind::Crypto, fmt::format("{} is not a sealed value (too short)", what));
    std::string out(sealed.size() - nlen - alen, '\0');
    unsigned long long mlen = 0;
    const auto* s = reinterpret_cast<const unsigned char*>(sealed.data());
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(out.data()),
                                                   &mlen, nullptr, s + nlen, sealed.size() - nlen,
                                                   nullptr, 0, s, key_.data()) != 0) {
        throw Error(ErrorKind::Crypto,
                    fmt::format("{} cannot be decrypted with this key (wrong key, or the data "
                                "was changed)",
                                what));
    }
    out.resize(mlen);
    return out;
}

std::string bytea_to_text(std::string_view bytes) {
    std::string out = "\\x";
    out.reserve(2 + bytes.size() * 2);
    static const char* hex = "0123456789abcdef";
    for (unsigned char c : bytes) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::string bytea_from_text(std::string_view text) {
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x')
        throw Error(ErrorKind::Database, "expected bytea in hex format");
    std::string out((text.size() - 2) / 2, '\0');
    auto val = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return 0;
    };
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<char>(val(text[2 + 2 * i]) * 16 + val(text[3 + 2 * i]));
    return out;
}

std::string random_uuid() {
    init_sodium();
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
    return fmt::format(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}"
        "{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15]);
}

}  // namespace queuer
