"""Exposes Debian's system libraries as cc_library targets of one repository, @system.

Link flags come from pkg-config at fetch time, so no BUILD file names a -l flag and
a library's flags change in one place. Headers under /usr/include need no -I; the few
libraries with their own include directory get it through a symlink in the repository.
"""

# target name -> pkg-config modules
_PKG_CONFIG = {
    "absl": [
        "absl_status",
        "absl_statusor",
        "absl_strings",
        "absl_str_format",
        "absl_synchronization",
        "absl_time",
        "absl_flat_hash_map",
        "absl_flat_hash_set",
        "absl_cleanup",
        "absl_random_random",
    ],
    "grpc++": ["grpc++"],
    "protobuf": ["protobuf"],
    "seccomp": ["libseccomp"],
    "cap-ng": ["libcap-ng"],
    "nftnl": ["libnftnl"],
    "mnl": ["libmnl"],
    "sqlite3": ["sqlite3"],
    "openssl": ["openssl"],
    "gtest": ["gtest", "gmock"],
    "gtest_main": ["gtest_main", "gmock"],
}

# Libraries without a pkg-config file: target -> (include dir or None, link flags).
_PLAIN = {
    # Header-only parts of Boost (Beast, Asio) plus Boost.JSON's library.
    "boost": (None, ["-lboost_json"]),
    # BoringSSL as Debian ships it for Android tools: its own include and library
    # directories, so it never mixes with OpenSSL in one process.
    # libknot (Knot DNS), only for bench/dns's parser comparison; its pkg-config file
    # names an include directory (p11-kit) the DNS headers do not need.
    "knot": (None, ["-lknot"]),
    "boringssl": ("/usr/include/android", [
        "-L/usr/lib/x86_64-linux-gnu/android",
        "-Wl,-rpath,/usr/lib/x86_64-linux-gnu/android",
        "-lcrypto",
    ]),
}

def _split(s):
    return [f for f in s.strip().split(" ") if f]

def _system_libs_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in _PKG_CONFIG.items():
        res = ctx.execute(["pkg-config", "--cflags", "--libs"] + modules)
        if res.return_code != 0:
            fail("pkg-config %s failed (run tools/install-deps.sh): %s" % (" ".join(modules), res.stderr))
        defines = []
        linkopts = []
        for flag in _split(res.stdout):
            if flag.startswith("-D"):
                defines.append(flag[2:])
            elif flag.startswith("-I"):
                if flag[2:] not in ("/usr/include", "/usr/include/x86_64-linux-gnu"):
                    fail("unexpected include dir for %s: %s" % (name, flag))
            else:
                linkopts.append(flag)
        build.append("cc_library(name = %r, defines = %r, linkopts = %r)" % (name, defines, linkopts))
    for name, (include, linkopts) in _PLAIN.items():
        if include:
            ctx.symlink(include, name + "_include")
            build.append(
                "cc_library(name = %r, hdrs = glob([%r]), includes = [%r], linkopts = %r)" %
                (name, name + "_include/**", name + "_include", linkopts),
            )
        else:
            build.append("cc_library(name = %r, linkopts = %r)" % (name, linkopts))
    ctx.file("WORKSPACE", 'workspace(name = "system")\n')
    ctx.file("BUILD.bazel", "\n".join(build) + "\n")

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
    configure = True,
)
