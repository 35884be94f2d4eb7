"""What a run prepares before it measures: the base image, the wheelhouse, the runtime
image and the per-strategy build context."""
