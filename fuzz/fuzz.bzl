"""libFuzzer targets, whose seed corpora also run as ordinary tests."""

def cc_fuzz_target(name, srcs, deps = [], corpus = []):
    """Makes the fuzzer <name> and the test <name>_regression from one fuzz target.

    srcs define `extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)`.

    <name> links libFuzzer's main, so it builds only with --config=fuzz (clang-14, which
    also instruments every dependency). It is tagged "manual", which keeps it out of
    `bazel build //...` and `bazel test //...` in the default configuration, and
    "fuzz_target", by which tools/fuzz.sh and tools/test.sh find it.

    <name>_regression links the same sources with regression_main.cc instead and feeds
    every file of corpus to LLVMFuzzerTestOneInput, in any configuration: each seed, and
    each reproducer added to the corpus after a crash, stays a test.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual", "fuzz_target"],
    )
    native.filegroup(
        name = name + "_corpus",
        srcs = corpus,
    )
    native.cc_test(
        name = name + "_regression",
        srcs = srcs,
        deps = deps + [Label("//fuzz:regression_main")],
        data = [":" + name + "_corpus"],
        args = ["$(rootpaths :%s_corpus)" % name],
    )
