// SHA-256 (OpenSSL behind the Sha256 class): published test vectors, and digests the earlier
// hand-written implementation produced for the same calls, so cache keys of existing stores
// stay the same.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"

namespace fs = std::filesystem;
using namespace lvmflow;

namespace {

// Bytes i*7+3 (mod 256): crosses the 55/56/64-byte padding boundaries of a SHA-256 block.
std::string pattern(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(i * 7 + 3);
  return s;
}

}  // namespace

TEST(Sha256, MatchesPublishedVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, SplitUpdatesMatchTheEarlierImplementation) {
  // Digests recorded from the hand-written implementation this class replaced.
  const std::vector<std::pair<std::size_t, std::string>> expected = {
      {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
      {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
      {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
      {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
      {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
      {127, "a8d23e75d936f303d248888d9b165ee543f4cbafcad3c9dd2a79bd84faa11d07"},
      {1000, "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371"}};
  for (const auto& [n, digest] : expected) {
    const std::string s = pattern(n);
    Sha256 h;
    h.update(s.substr(0, n / 3)).update(s.substr(n / 3));
    EXPECT_EQ(h.hex(), digest) << n << " bytes in two updates";
    EXPECT_EQ(sha256_hex(s), digest) << n << " bytes in one";
  }
}

TEST(Sha256, FieldsAreLengthPrefixedAsBefore) {
  EXPECT_EQ(Sha256().field("a").field("bc").hex(), "9a8acca1b6c6c0befd3fbc756aed625da998c998f7252e738c4ef061906b9b21");
  EXPECT_NE(Sha256().field("a").field("bc").hex(), Sha256().field("ab").field("c").hex());
  EXPECT_EQ(Sha256().field("").field("lvm.train").update("xyz").hex(),
            "e63557438b6c6689aef349cb5250ecf7de8d1627d8e96a2dcf932390d0bd5474");
}

TEST(Sha256, FileDigestEqualsInMemoryDigest) {
  const fs::path file = fs::temp_directory_path() / ("lvmflow-hash-test-" + std::to_string(::getpid()));
  const std::string bytes = pattern(200000);   // several 64 KiB reads
  std::ofstream(file, std::ios::binary) << bytes;
  EXPECT_EQ(sha256_file(file), sha256_hex(bytes));
  fs::remove(file);
  EXPECT_THROW(sha256_file(file), Error);
}

TEST(Sha256, UseAfterFinishIsAnErrorNotAWrongDigest) {
  Sha256 h;
  h.update("abc");
  EXPECT_EQ(h.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(h.update("more"), Error);
  EXPECT_THROW(h.hex(), Error);
}
