// Cipher (libsodium sealing), bytea text codec, random UUIDs.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "queuer/crypto.hpp"
#include "queuer/error.hpp"
#include "queuer/model.hpp"

using namespace queuer;

namespace {

const std::string kHexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
// The same 32 bytes in base64.
const std::string kB64Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const std::string kOtherHexKey = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST(Cipher, SealOpenRoundTrip) {
    Cipher c(kHexKey);
    for (std::string plain : {std::string(), std::string("[1,\"a\"]"), std::string(10000, 'x'),
                              std::string("nul\0byte", 8)}) {
        auto sealed = c.seal(plain);
        EXPECT_EQ(c.open(sealed, "value"), plain);
    }
}

TEST(Cipher, SealedBytesDifferFromPlaintextAndBetweenSeals) {
    Cipher c(kHexKey);
    std::string plain = R"(["secret parameter value"])";
    auto a = c.seal(plain);
    auto b = c.seal(plain);
    EXPECT_NE(a, b) << "each seal uses a fresh nonce";
    EXPECT_FALSE(contains(a, plain));
    EXPECT_FALSE(contains(a, "secret"));
    EXPECT_GT(a.size(), plain.size());
}

TEST(Cipher, WrongKeyIsACryptoErrorNeverGarbage) {
    Cipher right(kHexKey);
    Cipher wrong(kOtherHexKey);
    auto sealed = right.seal("[1,2,3]");
    try {
        auto out = wrong.open(sealed, "job 123");
        FAIL() << "opened with the wrong key: " << out;
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Crypto);
        EXPECT_TRUE(contains(e.what(), "job 123")) << e.what();
    }
}

TEST(Cipher, TamperedOrTruncatedDataRejected) {
    Cipher c(kHexKey);
    auto sealed = c.seal("hello");
    auto tampered = sealed;
    tampered[tampered.size() / 2] ^= 0x01;
    EXPECT_THROW(c.open(tampered, "x"), Error);
    try {
        c.open(sealed.substr(0, 10), "x");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Crypto);
    }
    EXPECT_THROW(c.open("", "x"), Error);
}

TEST(Cipher, HexAndBase64KeysAreTheSameKey) {
    Cipher hex(kHexKey);
    Cipher b64(kB64Key);
    EXPECT_EQ(b64.open(hex.seal("same"), "x"), "same");
    EXPECT_EQ(hex.open(b64.seal("same"), "x"), "same");
    // Upper-case hex, unpadded base64 and a trailing newline (key files) also work.
    Cipher upper("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    EXPECT_EQ(upper.open(hex.seal("u"), "x"), "u");
    Cipher nopad(kB64Key.substr(0, kB64Key.size() - 1));
    EXPECT_EQ(nopad.open(hex.seal("n"), "x"), "n");
    Cipher nl(kHexKey + "\n");
    EXPECT_EQ(nl.open(hex.seal("l"), "x"), "l");
}

TEST(Cipher, MalformedKeysRejectedWithoutEchoingTheKey) {
    const std::string short31 = kHexKey.substr(0, 62);  // 31 bytes in hex
    const std::string nonhex = "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const std::string b64_31 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==";  // 31 bytes
    const std::string longer = kHexKey + "00";
    for (const std::string& bad : {short31, nonhex, b64_31, longer, std::string("password")}) {
        try {
            Cipher c(bad);
            FAIL() << "accepted a malformed key of " << bad.size() << " characters";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Crypto);
            EXPECT_FALSE(contains(e.what(), bad)) << e.what();
            EXPECT_TRUE(contains(e.what(), "32 bytes")) << e.what();
        }
    }
    EXPECT_THROW(Cipher(""), Error);
}

TEST(Bytea, TextRoundTrip) {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    auto text = bytea_to_text(bytes);
    EXPECT_EQ(text.substr(0, 4), "\\x00");
    EXPECT_EQ(text.size(), 2 + 512u);
    EXPECT_EQ(bytea_from_text(text), bytes);
    EXPECT_EQ(bytea_to_text(""), "\\x");
    EXPECT_EQ(bytea_from_text("\\x"), "");
    EXPECT_EQ(bytea_from_text("\\xDEADbeef"), std::string("\xde\xad\xbe\xef"));
    EXPECT_THROW(bytea_from_text("plain"), Error);
}

TEST(Uuid, RandomUuidIsCanonicalVersion4AndUnique) {
    static const std::regex re(
        "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto u = random_uuid();
        EXPECT_TRUE(std::regex_match(u, re)) << u;
        EXPECT_NO_THROW(validate_rid(u));
        seen.insert(u);
    }
    EXPECT_EQ(seen.size(), 1000u);
}
