// The few Linux/glibc items Swift's Glibc module cannot see (they need
// _GNU_SOURCE, are macros, or are variadic). Each returns libc's value
// unchanged so Swift maps errno itself.
#ifndef USVC_SHIMS_H
#define USVC_SHIMS_H
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <termios.h>
#include <sys/ioctl.h>

/// `POSIX_SPAWN_SETSID`: the child starts a new session (and process group).
extern const short usvc_POSIX_SPAWN_SETSID;

/// `posix_spawn_file_actions_addclosefrom_np`: close every fd >= `from` in the child.
int usvc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// `posix_spawn_file_actions_addchdir_np`: chdir in the child before exec.
int usvc_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: orphaned descendants are reparented to us.
int usvc_set_child_subreaper(void);

/// `ioctl(fd, TIOCGWINSZ)` / `ioctl(fd, TIOCSWINSZ)`: terminal window size.
int usvc_get_winsize(int fd, struct winsize *size);
int usvc_set_winsize(int fd, const struct winsize *size);

/// `openpty` with the given attributes (NULL for the kernel's defaults).
int usvc_openpty(int *master, int *slave, char *name, size_t name_len,
                 const struct termios *attributes, const struct winsize *size);

/// `signalfd(-1, mask, SFD_CLOEXEC)`; the read value's signal number is
/// returned by `usvc_signalfd_read` (0 when nothing was pending).
int usvc_signalfd(const sigset_t *mask);
int usvc_signalfd_read(int fd);

/// A `timerfd` (CLOCK_MONOTONIC, non-blocking, close-on-exec) that becomes
/// readable every `milliseconds`; -1 with errno set.
int usvc_interval_timer(long milliseconds);

/// The process environment (`environ`).
char **usvc_environ(void);

/// The `WIFEXITED` family, as functions.
int usvc_exited(int status);
int usvc_exit_status(int status);
int usvc_term_signal(int status);

/// `pipe2(fds, O_CLOEXEC)`.
int usvc_pipe_cloexec(int fds[2]);

/// `malloc_trim(0)`: gives the free memory in the heap back to the kernel
/// (whole free pages, also below the top). Returns 1 when some was given back.
int usvc_malloc_trim(void);

/// `madvise(MADV_DONTNEED)` on the stack pages below the caller's frame (and
/// below 512 bytes for its own), down to the end of the stack's mapping: nothing
/// lives below the frame, and the kernel drops the pages (one touched again
/// comes back zero-filled). Returns 0, or -1 when madvise refused (errno).
int usvc_release_stack_below(void);



/// One step of what a child started by `usvc_spawn_plain` does with its
/// descriptors, resource limits and nice value before exec.
struct usvc_fd_action {
  int kind;          // USVC_FD_OPEN, USVC_FD_DUPLICATE, USVC_FD_CLOSE_FROM, USVC_SET_LIMIT or USVC_SET_NICE
  int fd;            // the descriptor it makes (open, duplicate) or the first it closes; the RLIMIT_*; the nice value
  int source;        // duplicate: the descriptor copied
  int flags;         // open: the open flags
  const char *path;  // open: the path
  unsigned long long soft, hard;  // set limit (RLIM_INFINITY: unlimited)
};
enum { USVC_FD_OPEN = 1, USVC_FD_DUPLICATE = 2, USVC_FD_CLOSE_FROM = 3, USVC_SET_LIMIT = 4, USVC_SET_NICE = 5 };
/// The bit of `usvc_spawn_plain`'s shortfall for the nice value (RLIMIT_* n is bit n).
enum { USVC_SHORT_NICE = 63 };

/// Starts `path` (which holds a '/') as posix_spawn would with an empty signal
/// mask (and POSIX_SPAWN_SETSID when `new_session`), but its child makes only
/// the calls asked for: glibc's resets 64 signal dispositions one syscall at a
/// time, which a process that installs no handler does not need.
/// Precondition: the caller has no signal handler installed (the child shares
/// its memory until exec). Returns the pid once exec succeeded, or -errno of
/// the step that failed. `*shortfall` gets a bit for each limit (and the nice
/// value) the child could not have as asked (a hard limit or nice value it may
/// not raise or lower): it kept what it was allowed, as near as it could.
int usvc_spawn_plain(const char *path, char *const argv[], char *const envp[],
                     const char *directory, int new_session,
                     const struct usvc_fd_action *actions, int action_count,
                     unsigned long long *shortfall);

/// Takes a POSIX write lock on the whole file, without waiting (`F_SETLK`).
/// Unlike flock, others can ask who holds it without taking it (`usvc_lock_holder`).
int usvc_lock_file(int fd);
/// The pid holding a write lock on `fd`'s file, 0 when none, -1 on error (`F_GETLK`).
int usvc_lock_holder(int fd);

/// Remembers how to give terminal `fd` back: its attributes before the board
/// (`saved`) and the bytes that leave the board's screen modes. Installs
/// handlers for the signals of a crash (SEGV, BUS, ILL, TRAP, ABRT, FPE, SYS)
/// that give it back, then let the process die of that signal as before.
/// Copies everything: the handlers must not touch Swift memory.
int usvc_terminal_guard(int fd, const struct termios *saved, const char *bytes, size_t length);

/// Gives the terminal back (the one place every exit path goes through:
/// quit, SIGTERM/SIGHUP/SIGINT, a crash). Async-signal-safe: a write and a
/// tcsetattr. Only the first call does anything.
void usvc_terminal_restore(void);

/// `wcwidth`: the columns a character takes (-1: not printable), by LC_CTYPE.
int usvc_wcwidth(unsigned int scalar);
/// Starts a non-blocking TCP connect to `host` (a numeric IPv4 or IPv6
/// address, or `localhost`) and `port`: the socket (CLOEXEC, non-blocking),
/// whose connect may still be in progress (poll it for POLLOUT, then
/// `usvc_socket_error`), or -errno. No name lookup: it would block.
int usvc_tcp_connect_start(const char *host, int port);
/// The pending error of a socket (SO_ERROR): 0 once a connect succeeded.
int usvc_socket_error(int fd);

/// Binds a new Unix datagram socket (non-blocking, close-on-exec) to `path`,
/// which must fit `sun_path` (107 bytes and a NUL): the socket file is made
/// mode 0600 (umask 0177 around `bind`; the caller is single-threaded). A
/// socket file already at `path` (left by a process that was killed) is
/// replaced; anything else there is not (-EEXIST). Returns the socket or -errno.
int usvc_unix_datagram_bind(const char *path);

#endif
