"""The Qt desktop application. All tensor work goes through the ``model`` package.

Workers (threads and the jobs they run) report how a job went with one vocabulary: ``succeeded(result)``,
``failed(str)`` (what to tell the user) and ``cancelled()``; ``finished`` keeps Qt's meaning: the thread or process
has ended, whatever the outcome.
"""
