"""The failures the checker found on the code before issue 11's fixes, as named scenarios.

Each entry is a minimal program and schedule (hand-minimised from the generator's
shrunk examples; FOUND.md says what went wrong on the old code). They run as plain tests
in test_scenarios.py, so each one names the fix that makes it pass.
"""

from __future__ import annotations

from scenarios.programs import Program, Schedule, scenario_from_json

_C = '{"op":"Step","name":"%s"}'
_LINES = {
    "cancel_on_create_callback_with_a_step_between": (
        '{"ops":[' + _C % "s1" + ',{"op":"Callback","name":"cb2","between":[{"name":"s3"}]}],'
        '"schedule":{"stop":{"kind":"cancel","at":"wait:cb2","reason":"customer called"}}}'
    ),
    "deadline_on_create_callback_with_a_step_between": (
        '{"ops":[' + _C % "s1" + ',{"op":"Callback","name":"cb2","between":[{"name":"s3"}]}],'
        '"schedule":{"stop":{"kind":"deadline","at":"wait:cb2","reason":"deadline"}}}'
    ),
    "cancel_while_a_step_between_callback_and_result_waits_to_retry": (
        '{"ops":[' + _C % "s1" + ',{"op":"Callback","name":"cb2","between":[{"name":"s3",'
        '"retries":1}]}],"schedule":{"stop":{"kind":"cancel","at":"wait:s3","reason":"r"}}}'
    ),
    "cancel_during_the_last_step_before_callback_result": (
        '{"ops":[{"op":"Callback","name":"cb1","between":[{"name":"s2"}]}],'
        '"schedule":{"stop":{"kind":"cancel","at":"during:s2","reason":"customer called"}}}'
    ),
    "cancel_in_a_child_saga_on_its_callback": (
        '{"ops":[' + _C % "s1" + ',{"op":"Child","name":"k","ops":[' + _C % "s2" + ","
        '{"op":"Callback","name":"cb3","between":[{"name":"s4"}]}]}],'
        '"schedule":{"stop":{"kind":"cancel","at":"wait:k/cb3","reason":"r"}}}'
    ),
    "cancel_after_the_pivot_while_a_step_before_callback_result_retries": (
        '{"ops":[{"op":"Step","name":"pay","kind":"pivot"},{"op":"Callback","name":"cb2",'
        '"between":[{"name":"ship","kind":"retriable","retries":1}]}],'
        '"schedule":{"stop":{"kind":"cancel","at":"wait:ship","reason":"r"}}}'
    ),
    "cancel_reason_with_the_terminate_prefix": (
        '{"ops":[' + _C % "s1" + ',{"op":"Wait","name":"w2"}],"schedule":{"stop":{"kind":'
        '"cancel","at":"wait:w2","reason":"saga-terminate: customer called"}}}'
    ),
    "a_second_cancel_overwrites_the_first": (
        '{"ops":[' + _C % "s1" + ',{"op":"Wait","name":"w2"}],"schedule":{"stop":{"kind":'
        '"cancel","at":"wait:w2","reason":"customer called","second":"duplicate"}}}'
    ),
    "cancel_reason_deadline_reads_as_a_deadline": (
        '{"ops":[' + _C % "s1" + ',{"op":"Wait","name":"w2"}],"schedule":{"stop":{"kind":'
        '"cancel","at":"wait:w2","reason":"deadline"}}}'
    ),
    "cancel_before_a_parallel_group_runs_its_branches": (
        '{"ops":[' + _C % "s1" + ',{"op":"Parallel","name":"g","branches":[{"name":"b"}]}],'
        '"schedule":{"stop":{"kind":"cancel","at":"before:g","reason":"r"}}}'
    ),
    "cancel_while_a_group_waits_loses_a_branch_that_succeeded_on_a_retry": (
        '{"ops":[{"op":"Parallel","name":"g","branches":[{"name":"x","retries":1},'
        '{"name":"y","retries":2}]}],'
        '"schedule":{"stop":{"kind":"cancel","at":"wait:g#2","reason":"r"}}}'
    ),
    "a_child_with_a_skipped_undo_makes_the_parent_compensated": (
        '{"ops":[{"op":"Child","name":"k","ops":[{"op":"Step","name":"s1","undo":"down"},'
        '{"op":"Step","name":"s2","final":"fail","retries":2}]}],'
        '"schedule":{"decisions":[["k/s1","skip"]]}}'
    ),
    "terminate_during_a_child_rollback_drops_the_parent_steps_from_not_undone": (
        '{"ops":[' + _C % "s1" + ',{"op":"Child","name":"k","ops":[{"op":"Step","name":"s2",'
        '"undo":"down"},{"op":"Step","name":"s3","final":"fail","retries":2}]}],'
        '"schedule":{"decisions":[["k/s2","terminate"]]}}'
    ),
    "cancel_during_a_step_then_a_crash_before_its_checkpoint_leaks_its_effect": (
        '{"ops":[' + _C % "s1" + "," + _C % "s2" + "," + _C % "s3" + "],"
        '"schedule":{"stop":{"kind":"cancel","at":"during:s2","reason":"r"},"crash":[2,"before"]}}'
    ),
    "terminate_while_parked_on_an_uncertain_undo_in_a_child_drops_it_from_not_undone": (
        '{"ops":[' + _C % "s1" + ',{"op":"Child","name":"k","ops":[{"op":"Step","name":"s4",'
        '"retries":2,"final":"fail","undo":"down","uncertain":true}]}],'
        '"schedule":{"decisions":[["k/s4","terminate"]]}}'
    ),
    "a_parked_saga_logs_its_operator_token": (
        '{"ops":[{"op":"Step","name":"s1","undo":"down"},{"op":"Step","name":"s2","final":"fail",'
        '"retries":2}],"schedule":{"decisions":[["s1","retry"]]}}'
    ),
    "parked_in_a_child_rollback_drops_the_parent_steps_from_not_undone": (
        '{"ops":[' + _C % "s1" + ',{"op":"Child","name":"k","ops":[{"op":"Step","name":"s2",'
        '"undo":"down"},{"op":"Step","name":"s3","final":"fail","retries":2}]}],'
        '"schedule":{"decisions":[["k/s2","leave"]]}}'
    ),
}

FOUND: dict[str, tuple[Program, Schedule]] = {
    name: scenario_from_json(line) for name, line in _LINES.items()
}
