/*
 * Force-included into every translation unit of src/ (see CMakeLists.txt).
 * These functions have no bounds, no error reporting, or hidden state; their
 * replacements are in meshward/base.h (STYLE.md "Buffers and parsing").
 * The system headers that declare them are included first, because a
 * poisoned name may not appear even in a later declaration.
 */
#ifndef MESHWARD_BANNED_H
#define MESHWARD_BANNED_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#pragma GCC poison strcpy strcat strncpy sprintf vsprintf gets strtok atoi sscanf
#endif
