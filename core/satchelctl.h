/* satchelctl.h - shared declarations of the satchelctl commands. */
#ifndef SC_SATCHELCTL_H
#define SC_SATCHELCTL_H
#endif
