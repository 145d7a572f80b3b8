#pragma once
// `lvmflow encode`: embeds one text per line into a float32 .npy (row i = line i), the way
// people use SentenceTransformer.encode for quick checks and scripts.
namespace lvmflow {

// argv[0] is "encode" (or the program name); returns the process exit status.
int run_encode_command(int argc, char** argv);

}  // namespace lvmflow
