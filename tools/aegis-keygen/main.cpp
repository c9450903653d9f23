#include "cli/tool.h"
int main() { return 0; }
