"""The Docker Update Module: what the Mender client runs on the device for `docker` payloads.

Standard library only, plus `mender_docker.spec` (and the `imageref`, `runargs` and
`runopts` it uses): it is packed into one file (`mender-docker build-module`) that
runs with the system python3.

Layout: `main` dispatches protocol states to the handlers `download`, `install`,
`rollback` and `finish` (commit, cleanup, failure). They stand side by side and never
import each other: what they share is in `deployment` (the phases, their table, and
undo/cleanup), `images` (pull, verify, load embedded images) and `streams` (the
client's payload pipes). All act through two interfaces only, the container engine
(`engine`, one `_spawn` choke point over the docker/podman CLI) and the persistent
`journal`. Every state computes its desired end state from the journal plus what the
engine reports, so each one is safe to re-run and safe after a crash at any point of
the one before.

Ownership: containers the module creates carry the label
`io.mender.docker.managed=1`. With `scope = all` (the original module's
behaviour) every running container is stopped for a deployment, but
containers without our label are never removed: after a commit they are left
stopped, after a rollback they are started again.
"""
