/* taskctl_menu.h - taskctl's interactive menu, like the original console program.
 *
 * taskctl_menu_run(path) when taskctl has no command and stdin is a terminal:
 * "1) add a task  2) list the tasks  3) quit", read line by line from stdin,
 * until 3 or end of input. Errors are printed and the menu goes on. Returns
 * the exit status (TASKCTL_EXIT_OK).
 */
#ifndef TASKSERVER_TASKCTL_MENU_H
#define TASKSERVER_TASKCTL_MENU_H

int taskctl_menu_run(const char *path);

#endif
