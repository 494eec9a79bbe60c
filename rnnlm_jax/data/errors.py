"""The one exception type of the data package."""


class DataError(ValueError):
  """Bad data input (missing file, bad encoding, bad config value, ...).

  The message is always ONE line that names the offending file or config key
  and says how to fix it, so that it reads well at the end of a traceback and in
  a log line.
  """

  def __init__(self, message: str):
    # Multi-line messages get lost in log aggregation; fold them into one line.
    super().__init__(' '.join(str(message).split('\n')))
