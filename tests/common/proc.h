/* Test helpers for driving programs as a user would: run a program with arguments and extra
 * environment variables, capture what it writes to stdout and stderr, and get its exit status,
 * with a timeout. Plus small file-system helpers (temporary directories, whole-file reads and
 * writes, recursive removal). Meant for tests only: errors are reported on stderr and as a -1 or
 * NULL return, never by aborting, so that the test framework can report the failing check. */
#ifndef FEDC_TEST_PROC_H
#define FEDC_TEST_PROC_H

#include <stddef.h>

/* What one run of a program produced. */
typedef struct proc_result {
    int status;      /* exit code when the program exited normally, else -1 */
    int term_signal; /* the signal that ended it (0 when it exited normally) */
    int timed_out;   /* 1 when it was killed for running past the timeout */
    char *out;       /* everything written to stdout, NUL-terminated; owned */
    size_t out_len;  /* bytes in out, not counting the terminator */
    char *err;       /* everything written to stderr, NUL-terminated; owned */
    size_t err_len;
} proc_result;

/* Runs argv[0] (a path, not searched in PATH) with the arguments argv[1..] (NULL-terminated) and
 * the caller's environment plus env_extra, a NULL-terminated list of "NAME=value" strings (may be
 * NULL) that replace variables of the same name. stdin is /dev/null. stdout and stderr are read
 * concurrently, so a program writing any amount of output cannot block. After timeout_s seconds
 * (> 0) the program and its process group are killed with SIGKILL and r->timed_out is set.
 * Returns 0 when the program ran (whatever its exit status; see r), or -1 when it could not be
 * started or waited for (a message is printed). r is always initialised; release it with
 * proc_result_release. Strings are borrowed for the duration of the call. */
int proc_run(proc_result *r, const char *const *argv, const char *const *env_extra, int timeout_s);

/* Starts argv[0] in the background (own process group, stdin /dev/null) with stdout and stderr
 * appended to the files out_path and err_path (created if missing). Returns the pid, or -1 after
 * printing a message. */
int proc_spawn(const char *const *argv, const char *const *env_extra, const char *out_path,
               const char *err_path);

/* Waits up to timeout_s for a spawned process; on timeout kills its group with SIGKILL and sets
 * r->timed_out. Fills status/term_signal/timed_out of r (out/err stay NULL: read the files).
 * Returns 0, or -1 when waitpid fails. */
int proc_wait(int pid, proc_result *r, int timeout_s);

/* Sends sig to a spawned process's group (SIGKILL, SIGSTOP, SIGCONT...). */
void proc_signal(int pid, int sig);

/* Frees the captured output; r may be reused afterwards. */
void proc_result_release(proc_result *r);

/* Creates a fresh private directory under $TMPDIR (or /tmp) whose name starts with `prefix`.
 * Returns its path (caller frees), or NULL after printing a message. */
char *proc_mkdtemp(const char *prefix);

/* Joins dir and name with a '/'. Returns a new string (caller frees), or NULL when out of memory.
 */
char *proc_path(const char *dir, const char *name);

/* Writes len bytes to path, replacing the file. Returns 0, or -1 after printing a message. */
int proc_write_bytes(const char *path, const void *data, size_t len);

/* Writes the NUL-terminated string text to path (without the terminator). */
int proc_write_file(const char *path, const char *text);

/* Reads a whole file. Returns a NUL-terminated buffer (caller frees) and its length without the
 * terminator in *len (len may be NULL), or NULL when the file cannot be read (errno is kept). */
char *proc_read_file(const char *path, size_t *len);

/* 1 when path names an existing file or directory, else 0. */
int proc_exists(const char *path);

/* Removes path and, for a directory, everything below it (symbolic links are removed, not
 * followed). Returns 0, or -1 when something could not be removed (a message is printed). */
int proc_rmtree(const char *path);

#endif
