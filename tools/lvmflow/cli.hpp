#pragma once
namespace lvmflow {
// The `lvmflow` command line; returns the process exit code (0 ok, 1 run failed, 2 bad input).
int cli_main(int argc, char** argv);
}  // namespace lvmflow
