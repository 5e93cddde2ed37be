// Shared argument checking for the bind_*.c files (see bind_common.c).
#ifndef QT_BIND_COMMON_H
#define QT_BIND_COMMON_H
#include "py/dynruntime.h"
#endif
