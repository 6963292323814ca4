/* shim_fault.h - fault injection for the tests (tests/shim_fault.c): chosen system calls fail.
 *
 *     shim_fault_set("pwrite=ENOSPC,path=tasks.json,times=1");   arm (rules: shim_fault.c)
 *     ... the call under test ...
 *     ck_assert_uint_eq(shim_fault_hits(), 1);                   failures since the set
 *     shim_fault_set(NULL);                                      disarm
 *
 * For a Check suite that links shim_fault.c in; a program under LD_PRELOAD reads the same
 * rules from SHIM_FAULT. shim_fault_set() returns 0, or -1 (the rule is wrong; said on
 * stderr), and then nothing is armed.
 */
#ifndef TASKSERVER_SHIM_FAULT_H
#define TASKSERVER_SHIM_FAULT_H

int shim_fault_set(const char *spec);
unsigned long shim_fault_hits(void);

#endif
