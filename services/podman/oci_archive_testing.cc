#include "services/podman/oci_archive_testing.h"

#include <openssl/sha.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coolify::podman::testing {

TarWriter& TarWriter::Add(const std::string& name, const std::string& data, char type, const std::string& magic) {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011lo", static_cast<unsigned long>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 1700000000);
  h[156] = type;
  std::memcpy(h + 257, magic.data(), std::min<size_t>(magic.size(), 8));
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  out_.append(h, sizeof(h));
  out_ += data;
  out_.append((512 - data.size() % 512) % 512, '\0');
  return *this;
}

std::string TarWriter::End() {
  out_.append(1024, '\0');
  return out_;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string hex;
  for (unsigned char c : digest) absl::StrAppendFormat(&hex, "%02x", c);
  return hex;
}

TarWriter OciLayout(const std::string& file_path, const std::string& file_contents, const std::string& index_extra) {
  const std::string layer = TarWriter().Add(file_path, file_contents).End();
  const std::string layer_digest = Sha256Hex(layer);
  const std::string config = absl::StrCat(
      R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},)",
      R"("rootfs":{"type":"layers","diff_ids":["sha256:)", layer_digest, R"("]}})");
  const std::string config_digest = Sha256Hex(config);
  const std::string manifest = absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)", config_digest,
      R"(","size":)", config.size(), R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",)",
      R"("digest":"sha256:)", layer_digest, R"(","size":)", layer.size(), "}]}");
  const std::string manifest_digest = Sha256Hex(manifest);
  const std::string index = absl::StrCat(
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
      R"("digest":"sha256:)", manifest_digest, R"(","size":)", manifest.size(), index_extra, "}]}");
  TarWriter tar;
  tar.Dir("blobs/").Dir("blobs/sha256/");
  tar.Add("blobs/sha256/" + manifest_digest, manifest);
  tar.Add("blobs/sha256/" + config_digest, config);
  tar.Add("blobs/sha256/" + layer_digest, layer);
  tar.Add("index.json", index);
  tar.Add("oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
  return tar;
}

}  // namespace coolify::podman::testing
