// Tar archives made byte by byte for tests of the image archive check and hand-over: the
// well-formed unnamed OCI layout a build writes, and the forgeries it must refuse.
#ifndef COOLD_SERVICES_PODMAN_OCI_ARCHIVE_TESTING_H_
#define COOLD_SERVICES_PODMAN_OCI_ARCHIVE_TESTING_H_

#include <string>

namespace coolify::podman::testing {

class TarWriter {
 public:
  // A member: its ustar header (type '0' file, '5' directory, 'x' pax, 'L' GNU long
  // name, ...) and its data padded to 512 bytes. `magic` is the 8 bytes at offset 257.
  TarWriter& Add(const std::string& name, const std::string& data, char type = '0',
                 const std::string& magic = std::string("ustar\0" "00", 8));
  TarWriter& Dir(const std::string& name) { return Add(name, "", '5'); }
  // The two zero blocks that end an archive; the archive's bytes.
  std::string End();
  // The bytes so far, without an end.
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// The sha256 of `data`, 64 lowercase hex digits.
std::string Sha256Hex(const std::string& data);

// An OCI layout of one image whose single layer holds `file` (path, contents), with
// `index_extra` inserted into index.json's manifest descriptor (e.g. an annotations
// member), written with the TarWriter but not ended: the caller adds or ends.
TarWriter OciLayout(const std::string& file_path, const std::string& file_contents,
                    const std::string& index_extra = "");

}  // namespace coolify::podman::testing

#endif  // COOLD_SERVICES_PODMAN_OCI_ARCHIVE_TESTING_H_
