#include "tools/lvmflow/cli.hpp"

int main(int argc, char** argv) { return lvmflow::cli_main(argc, argv); }
