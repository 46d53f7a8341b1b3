"""Embeds checked-in text files (policy lists) into a C++ library at build time."""

def cc_embed_text(name, srcs, namespace, visibility = None):
    """Makes <name>.h/.cc defining `std::string_view <namespace>::Embedded(std::string_view path)`.

    The function returns the text of one of srcs by its workspace-relative path, or an
    empty view for any other path. Embedding means a deployed binary cannot be pointed at
    a different, looser list.
    """
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = [name + ".h", name + ".cc"],
        cmd = "$(location //tools/build:embed_text.sh) %s $(location %s.h) $(location %s.cc) %s $(SRCS)" % (
            namespace,
            name,
            name,
            native.package_name() + "/" + name + ".h",
        ),
        tools = ["//tools/build:embed_text.sh"],
    )
    native.cc_library(
        name = name,
        srcs = [name + ".cc"],
        hdrs = [name + ".h"],
        visibility = visibility,
    )
