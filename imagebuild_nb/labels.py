"""Labels imagebuild-nb puts on the images it builds (read back by the existence checks)."""

# The content hash of the spec an image was built from: an explicit, user-pinned tag can then
# be told apart from an image built from another spec under the same tag.
SPEC_HASH_LABEL = "io.imagebuild-nb.spec-hash"
VERSION_LABEL = "io.imagebuild-nb.version"
