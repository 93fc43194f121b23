#include "core.h"
int main(void) { return 1; }
