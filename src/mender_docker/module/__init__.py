"""The Docker Update Module: what the Mender client runs on the device for `docker` payloads.

Standard library only, plus `mender_docker.spec`: it is packed into one file
(`mender-docker build-module`) that runs with the system python3.

Layout: `main` dispatches protocol states to `download`, `install`,
`rollback` and `finish` (commit, cleanup, failure); those act through two
interfaces only, the container engine (`engine`, one `run()` choke point over
the docker/podman CLI) and the persistent `journal`. Every state computes its
desired end state from the journal plus what the engine reports, so each one
is safe to re-run and safe after a crash at any point of the one before.

Ownership: containers the module creates carry the label
`io.mender.docker.managed=1`. With `scope = all` (the original module's
behaviour) every running container is stopped for a deployment, but
containers without our label are never removed: after a commit they are left
stopped, after a rollback they are started again.
"""
