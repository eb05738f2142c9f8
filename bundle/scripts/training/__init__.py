# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Training-time handlers: resume-checkpoint discovery and pruning of stale last checkpoints."""
