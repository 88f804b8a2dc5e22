#define _GNU_SOURCE
#include "shims.h"
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const short usvc_POSIX_SPAWN_SETSID = POSIX_SPAWN_SETSID;

int usvc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
  return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int usvc_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
  return posix_spawn_file_actions_addchdir_np(actions, path);
}

int usvc_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int usvc_get_winsize(int fd, struct winsize *size) { return ioctl(fd, TIOCGWINSZ, size); }
int usvc_set_winsize(int fd, const struct winsize *size) { return ioctl(fd, TIOCSWINSZ, size); }

int usvc_openpty(int *master, int *slave, char *name, size_t name_len,
                 const struct termios *attributes, const struct winsize *size) {
  if (openpty(master, slave, NULL, attributes, size) != 0) return -1;
  // The slave's path is what the child opens after setsid, so that the pty
  // becomes its controlling terminal; both ends stay out of exec'd children.
  if (ttyname_r(*slave, name, name_len) != 0) return -1;
  fcntl(*master, F_SETFD, FD_CLOEXEC);
  fcntl(*slave, F_SETFD, FD_CLOEXEC);
  return 0;
}

int usvc_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

int usvc_signalfd_read(int fd) {
  struct signalfd_siginfo info;
  ssize_t n = read(fd, &info, sizeof info);
  if (n != (ssize_t)sizeof info) return 0;
  return (int)info.ssi_signo;
}

char **usvc_environ(void) { return environ; }

int usvc_exited(int status) { return WIFEXITED(status); }
int usvc_exit_status(int status) { return WEXITSTATUS(status); }
int usvc_signaled(int status) { return WIFSIGNALED(status); }
int usvc_term_signal(int status) { return WTERMSIG(status); }

int usvc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int usvc_lock_file(int fd) {
  struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  return fcntl(fd, F_SETLK, &lock);
}

int usvc_lock_holder(int fd) {
  struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, F_GETLK, &lock) != 0) return -1;
  return lock.l_type == F_UNLCK ? 0 : (int)lock.l_pid;
}
