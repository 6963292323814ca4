/* taskctl_menu.c - the interactive menu: add and list tasks at a terminal. */
#include "taskctl_menu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "taskctl_ops.h"

/* Reads one line from stdin without its newline. Returns its length, -1 at EOF. */
static ssize_t menu_read(char **line, size_t *cap)
{
    fflush(stdout);
    ssize_t n = getline(line, cap, stdin);
    if (n < 0)
        return -1;
    if (n > 0 && (*line)[n - 1] == '\n')
        (*line)[--n] = '\0';
    if (n > 0 && (*line)[n - 1] == '\r')
        (*line)[--n] = '\0';
    return n;
}

static void menu_add(const char *path, char **line, size_t *cap)
{
    struct taskctl_ops_fields f = {.seq = -1};
    struct task_meta meta;
    char err[TASKCTL_ERR_MAX], *titulo;
    int invalid;

    fputs("titulo: ", stdout);
    if (menu_read(line, cap) < 0)
        return;
    titulo = strdup(*line);
    if (titulo == NULL) {
        taskctl_ops_error("menu: %s", strerror(errno));
        return;
    }
    fputs("descripcion (enter for none): ", stdout);
    if (menu_read(line, cap) < 0) {
        free(titulo);
        return;
    }
    if ((*line)[0] != '\0')
        f.descripcion = *line;
    struct task_store *s = taskctl_ops_open(path, TASKCTL_OPEN_WRITE, 0);
    if (s != NULL) {
        if (taskctl_ops_add(s, titulo, &f, &meta, &invalid, err, sizeof(err)) < 0) {
            int saved = errno;
            fflush(stdout);
            if (invalid)
                taskctl_ops_error("not added: %s", err);
            else
                taskctl_ops_error("%s%s", err[0] ? err : strerror(saved), taskctl_ops_hint(saved));
        }
        task_store_close(s);
    }
    free(titulo);
}

/* Like the original console program: a numbered menu until 3 or end of input. */
int taskctl_menu_run(const char *path)
{
    char *line = NULL;
    size_t cap = 0;
    printf("taskctl: tasks in %s\n", path);
    for (;;) {
        fputs("\n1) add a task\n2) list the tasks\n3) quit\nchoice: ", stdout);
        if (menu_read(&line, &cap) < 0) {
            putchar('\n');
            break;
        }
        if (strcmp(line, "1") == 0) {
            menu_add(path, &line, &cap);
        } else if (strcmp(line, "2") == 0) {
            taskctl_ops_list(path, 0);
        } else if (strcmp(line, "3") == 0 || strcmp(line, "q") == 0) {
            break;
        } else if (line[0] != '\0') {
            fputs("choose 1, 2 or 3\n", stdout);
        }
    }
    free(line);
    fflush(stdout);
    return TASKCTL_EXIT_OK;
}
