#include "services/podman/oci_archive_check.h"

#include <string>

#include "gtest/gtest.h"
#include "services/podman/oci_archive_testing.h"

namespace coolify::podman {
namespace {

using testing::OciLayout;
using testing::TarWriter;

// Fed in pieces of `piece` bytes, as the hand-over streams it.
absl::Status Check(const std::string& archive, size_t piece = 4096) {
  OciArchiveChecker checker;
  for (size_t at = 0; at < archive.size(); at += piece) {
    if (absl::Status s = checker.Feed(absl::string_view(archive).substr(at, piece)); !s.ok()) return s;
  }
  return checker.Finish();
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(OciArchiveCheck, AnUnnamedLayoutPassesInAnyPieces) {
  const std::string archive = OciLayout("hello.txt", "hi\n").End();
  for (size_t piece : {1, 7, 511, 512, 513, 4096, 1 << 20}) EXPECT_TRUE(Check(archive, piece).ok()) << piece;
  // Zeros after the end (a writer's record padding) are fine.
  EXPECT_TRUE(Check(archive + std::string(9216, '\0')).ok());
}

TEST(OciArchiveCheck, WhatCouldNameAnImageIsRefused) {
  struct Case {
    const char* what;
    std::string archive;
    const char* message;
  } cases[] = {
      {"ref.name annotation",
       OciLayout("a", "b", R"(,"annotations":{"org.opencontainers.image.ref.name":"localhost/busybox:latest"})").End(),
       "index.json holds annotations"},
      {"escaped key", OciLayout("a", "b", R"(,"\u0061nnotations":{}})").End(), "index.json holds a backslash"},
      {"docker manifest.json", OciLayout("a", "b").Add("manifest.json", "[]").End(), "\"manifest.json\" is not part"},
      {"docker repositories", OciLayout("a", "b").Add("repositories", "{}").End(), "\"repositories\" is not part"},
      {"pax header", TarWriter().Add("PaxHeader/index.json", "30 path=index.json\n", 'x').End(), "pax header"},
      {"global pax header", TarWriter().Add("pax_global_header", "", 'g').End(), "pax header"},
      {"GNU long name", TarWriter().Add("././@LongLink", "index.json", 'L').End(), "GNU long name"},
      {"GNU magic", TarWriter().Add("index.json", "{}", '0', std::string("ustar  \0", 8)).End(), "not a POSIX ustar"},
      {"duplicate index.json", OciLayout("a", "b").Add("index.json", R"({"manifests":[]})").End(), "\"index.json\" twice"},
      {"symlink", TarWriter().Add("index.json", "", '2').End(), "member type '2'"},
      {"hard link", TarWriter().Add("oci-layout", "", '1').End(), "member type '1'"},
      {"path outside", TarWriter().Add("../index.json", "{}").End(), "is not part"},
      {"nested name", TarWriter().Add("blobs/sha256/x/index.json", "{}").End(), "is not part"},
      {"upper-case digest", TarWriter().Add("blobs/sha256/" + std::string(64, 'A'), "x").End(), "is not part"},
      {"directory as file", TarWriter().Add("blobs/", "").End(), "is not part"},
      {"large index.json", TarWriter().Add("index.json", std::string(64 * 1024 + 1, ' ')).End(), "larger than 64 KiB"},
      {"no index.json", TarWriter().Add("oci-layout", "{}").End(), "no index.json"},
      {"cut short", OciLayout("a", "b").bytes(), "ends early"},
      {"data after the end", OciLayout("a", "b").End() + "x", "data after the end"},
  };
  for (const Case& c : cases) {
    absl::Status s = Check(c.archive, 1000);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.what << ": " << s;
    EXPECT_NE(Message(s).find(c.message), std::string::npos) << c.what << ": " << s;
  }
}

TEST(OciArchiveCheck, HeadersAreCheckedExactly) {
  std::string archive = OciLayout("a", "b").End();
  std::string bad_sum = archive;
  bad_sum[0] = 'c';  // "blobs/" -> "clobs/" with the old checksum
  EXPECT_NE(Message(Check(bad_sum)).find("checksum mismatch"), std::string::npos);
  std::string prefix = TarWriter().Add("index.json", "{}").End();
  prefix[345] = 'x';
  EXPECT_FALSE(Check(prefix).ok());
  // The first error stays.
  OciArchiveChecker checker;
  EXPECT_FALSE(checker.Feed(TarWriter().Add("manifest.json", "[]").End()).ok());
  EXPECT_FALSE(checker.Feed(archive).ok());
  EXPECT_FALSE(checker.Finish().ok());
}

}  // namespace
}  // namespace coolify::podman
