/* Running programs under test and small file-system helpers (see proc.h). The child is started
 * with fork and execve in its own process group; both output pipes are drained with poll() so that
 * neither can fill up while we wait on the other. Not thread-safe; tests call it from one thread.
 * Deliberately left out: feeding stdin, searching PATH, and Windows. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fedc/clock.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* POSIX leaves the declaration to the application. */
extern char **environ;

/* A growable byte buffer that always keeps a NUL after its contents. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static int sbuf_reserve(sbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q)
        return -1;
    b->p = q;
    b->cap = cap;
    return 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Length of the name part of "NAME=value" (the whole string when there is no '='). */
static size_t env_name_len(const char *kv) {
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* The caller's environment with env_extra replacing variables of the same name. The strings are
 * borrowed; only the array is allocated. */
static char **build_env(const char *const *env_extra) {
    size_t n_env = 0, n_extra = 0;
    while (environ && environ[n_env])
        n_env++;
    while (env_extra && env_extra[n_extra])
        n_extra++;
    char **env = calloc(n_env + n_extra + 1, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        size_t nl = env_name_len(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < n_extra && !replaced; j++)
            replaced =
                env_name_len(env_extra[j]) == nl && strncmp(environ[i], env_extra[j], nl) == 0;
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < n_extra; j++)
        env[k++] = (char *)env_extra[j];
    env[k] = NULL;
    return env;
}

static int set_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* In the child: only async-signal-safe calls until execve. */
static void child_exec(const char *const *argv, char **env, int out_w, int err_w) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
        dup2(err_w, STDERR_FILENO) < 0)
        _exit(126);
    (void)setpgid(0, 0);
    execve(argv[0], (char *const *)argv, env);
    static const char msg[] = "proc_run: execve failed\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

/* Reads what is available on fd into b. Returns 1 at end of file, 0 otherwise, -1 on error. */
static int drain(int fd, sbuf *b) {
    if (sbuf_reserve(b, 65536))
        return -1;
    ssize_t k = read(fd, b->p + b->len, b->cap - b->len - 1);
    if (k < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (k == 0)
        return 1;
    b->len += (size_t)k;
    b->p[b->len] = 0;
    return 0;
}

static void kill_group(pid_t pid) {
    (void)kill(-pid, SIGKILL);
    (void)kill(pid, SIGKILL);
}

int proc_run(proc_result *r, const char *const *argv, const char *const *env_extra, int timeout_s) {
    int rc = -1;
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    sbuf out = {0}, err = {0};
    char **env = NULL;
    pid_t pid = -1;
    memset(r, 0, sizeof *r);
    r->status = -1;

    if (sbuf_reserve(&out, 0) || sbuf_reserve(&err, 0) || !(env = build_env(env_extra))) {
        fprintf(stderr, "proc_run: out of memory\n");
        goto out;
    }
    out.p[0] = err.p[0] = 0;
    if (pipe(po) != 0 || pipe(pe) != 0 || set_cloexec(po[0]) || set_cloexec(pe[0]) ||
        set_cloexec(po[1]) || set_cloexec(pe[1])) {
        fprintf(stderr, "proc_run: pipe: %s\n", strerror(errno));
        goto out;
    }
    fflush(NULL); /* do not let the child inherit and flush our buffered output */
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "proc_run: fork: %s\n", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(argv, env, po[1], pe[1]);
    (void)setpgid(pid, pid); /* also in the parent, so that kill(-pid) works at once */
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;

    const double deadline = fedc_clock_s() + (timeout_s > 0 ? timeout_s : 1);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    sbuf *bufs[2] = {&out, &err};
    int open_fds = 2;
    while (open_fds > 0) {
        double left = deadline - fedc_clock_s();
        if (left <= 0) {
            r->timed_out = 1;
            kill_group(pid);
            break;
        }
        int n = poll(fds, 2, (int)(left * 1000.0) + 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "proc_run: poll: %s\n", strerror(errno));
            kill_group(pid);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int e = drain(fds[i].fd, bufs[i]);
            if (e < 0) {
                fprintf(stderr, "proc_run: reading output: %s\n", strerror(errno));
                kill_group(pid);
                open_fds = 0;
                break;
            }
            if (e == 1) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    /* Both pipes are closed (or we gave up on them): wait for the exit, still under the deadline.
     */
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, r->timed_out ? 0 : WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "proc_run: waitpid: %s\n", strerror(errno));
            goto out;
        }
        if (w == 0) {
            if (fedc_clock_s() >= deadline) {
                r->timed_out = 1;
                kill_group(pid);
            } else {
                sleep_ms(5);
            }
        }
    }
    pid = -1;
    if (WIFEXITED(st)) {
        r->status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        r->term_signal = WTERMSIG(st);
    }
    rc = 0;
out:
    if (pid > 0) {
        kill_group(pid);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    free(env);
    r->out = out.p;
    r->out_len = out.len;
    r->err = err.p;
    r->err_len = err.len;
    return rc;
}

int proc_spawn(const char *const *argv, const char *const *env_extra, const char *out_path,
               const char *err_path) {
    char **env = build_env(env_extra);
    if (!env) {
        fprintf(stderr, "proc_spawn: out of memory\n");
        return -1;
    }
    int fo = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fo < 0 || fe < 0) {
        fprintf(stderr, "proc_spawn: cannot open %s or %s: %s\n", out_path, err_path,
                strerror(errno));
        if (fo >= 0)
            close(fo);
        if (fe >= 0)
            close(fe);
        free(env);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "proc_spawn: fork: %s\n", strerror(errno));
        close(fo);
        close(fe);
        free(env);
        return -1;
    }
    if (pid == 0)
        child_exec(argv, env, fo, fe);
    (void)setpgid(pid, pid);
    close(fo);
    close(fe);
    free(env);
    return (int)pid;
}

int proc_wait(int pid, proc_result *r, int timeout_s) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    const double deadline = fedc_clock_s() + (timeout_s > 0 ? timeout_s : 1);
    int st = 0;
    for (;;) {
        pid_t w = waitpid((pid_t)pid, &st, r->timed_out ? 0 : WNOHANG);
        if (w == (pid_t)pid)
            break;
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "proc_wait: waitpid: %s\n", strerror(errno));
            return -1;
        }
        if (w == 0) {
            if (fedc_clock_s() >= deadline) {
                r->timed_out = 1;
                kill_group((pid_t)pid);
            } else {
                sleep_ms(10);
            }
        }
    }
    if (WIFEXITED(st))
        r->status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        r->term_signal = WTERMSIG(st);
    return 0;
}

void proc_signal(int pid, int sig) {
    (void)kill(-(pid_t)pid, sig);
    (void)kill((pid_t)pid, sig);
}

void proc_result_release(proc_result *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

char *proc_mkdtemp(const char *prefix) {
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    size_t n = strlen(base) + strlen(prefix) + 16;
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "proc_mkdtemp: out of memory\n");
        return NULL;
    }
    snprintf(p, n, "%s/%sXXXXXX", base, prefix);
    if (!mkdtemp(p)) {
        fprintf(stderr, "proc_mkdtemp: %s: %s\n", p, strerror(errno));
        free(p);
        return NULL;
    }
    return p;
}

char *proc_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int proc_write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "proc_write_bytes: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (len && fwrite(data, 1, len, f) != len)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "proc_write_bytes: %s: write failed\n", path);
    return rc;
}

int proc_write_file(const char *path, const char *text) {
    return proc_write_bytes(path, text, strlen(text));
}

char *proc_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sbuf b = {0};
    for (;;) {
        if (sbuf_reserve(&b, 65536)) {
            free(b.p);
            fclose(f);
            errno = ENOMEM;
            return NULL;
        }
        size_t k = fread(b.p + b.len, 1, b.cap - b.len - 1, f);
        b.len += k;
        b.p[b.len] = 0;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.p);
        errno = EIO;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

int proc_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int proc_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) {
            fprintf(stderr, "proc_rmtree: %s: %s\n", path, strerror(errno));
            return -1;
        }
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *sub = proc_path(path, e->d_name);
            if (!sub || proc_rmtree(sub) != 0)
                rc = -1;
            free(sub);
        }
        closedir(dir);
        if (rmdir(path) != 0) {
            fprintf(stderr, "proc_rmtree: %s: %s\n", path, strerror(errno));
            rc = -1;
        }
    } else if (unlink(path) != 0) {
        fprintf(stderr, "proc_rmtree: %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}
