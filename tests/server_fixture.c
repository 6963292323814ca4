/* server_fixture.c - a configuration, a fresh tasks.json and an api for the worker's suites. */
#include "server_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "task_store.h"
#include "test_tmp.h"

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

void server_fixture_config(struct config *cfg, const char *name)
{
    char *argv[] = {(char *)name, NULL};
    char dir[512];
    ck_assert_int_eq(config_parse(cfg, 1, argv, no_env), 0);
    test_tmp_dir(dir, sizeof(dir), name);
    ck_assert_uint_lt(strlen(dir) + strlen("/tasks.json"), sizeof(cfg->file));
    snprintf(cfg->file, sizeof(cfg->file), "%s/tasks.json", dir);
    log_set_quiet(1);
}

struct api *server_fixture_open(const struct config *cfg)
{
    const struct task_store_options opts = {.lock_timeout_ms = 5000, .crash_after_bytes = -1};
    struct task_store_report rep;
    char err[512];
    ck_assert_msg(task_store_check(cfg->file, TASK_STORE_REPAIR, &rep, err, sizeof(err)) == 0, "%s",
                  err);
    struct api *api = api_create(cfg, &opts);
    ck_assert_ptr_nonnull(api);
    ck_assert_msg(api_store(api) != NULL, "%s: no store", cfg->file);
    return api;
}

void server_fixture_close(struct api *api, const struct config *cfg)
{
    char dir[sizeof(cfg->file)];
    snprintf(dir, sizeof(dir), "%s", cfg->file);
    char *slash = strrchr(dir, '/');
    api_free(api); /* and the store */
    unlink(cfg->file);
    if (slash != NULL) {
        *slash = '\0';
        rmdir(dir);
    }
}
