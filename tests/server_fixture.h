/* server_fixture.h - what the worker's Check suites share (test_api, test_conn): taskserver's
 * default configuration, a fresh tasks.json in a temporary directory, the api over it.
 *
 *   static struct config cfg;                       (must outlive the api: file scope)
 *   setup:     server_fixture_config(&cfg, "test_conn");
 *              cfg.max_body = 1000; ...             (adjust before the api reads it)
 *              api = server_fixture_open(&cfg);
 *   teardown:  server_fixture_close(api, &cfg);     (the api, its store, the directory)
 *
 * cfg.file is the path of tasks.json. Failures are Check assertions: the test that called
 * the helper fails. Logging is quiet.
 */
#ifndef TASKSERVER_SERVER_FIXTURE_H
#define TASKSERVER_SERVER_FIXTURE_H

#include "api.h"
#include "config.h"

/* cfg: the defaults of `taskserver` without flags or environment; cfg->file a path in a new
 * directory (test_tmp_dir(): inside the run's scratch folder; the file not created yet). */
void server_fixture_config(struct config *cfg, const char *name);

/* Creates cfg->file as the server would (the store's check with repair) and returns the api
 * over it, its store open. */
struct api *server_fixture_open(const struct config *cfg);

/* Frees the api (and its store), removes cfg->file and its directory. */
void server_fixture_close(struct api *api, const struct config *cfg);

#endif
