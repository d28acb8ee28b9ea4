"""Score one benchmark's predictions against its records and write the result JSON.

    avrt eval-score --records records.jsonl --predictions predictions.jsonl --output result.json

Predictions are JSONL rows {"id": <record id>, "output": <raw model text>}. The result holds the
strict and official accuracies, the error rates (IFE, logic error, missing media, no
prediction), per-category breakdowns, the input protocol the prediction rows name and, unless
--no-items, one entry per item.
`--answer-parser teacher` reads teacher outputs ("Answer: (D) ...") instead of `<answer>` tags.
"""

from __future__ import annotations

import logging

from avrt.evaluation.records import read_records
from avrt.evaluation.scoring import ANSWER_PARSERS, read_predictions, read_protocol, score
from avrt.core.io import write_json

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--records", required=True, help="records JSONL (avrt eval-records)")
    parser.add_argument("--predictions", required=True, help='predictions JSONL: {"id", "output"} per row')
    parser.add_argument("--output", required=True, help="result JSON to write")
    parser.add_argument("--no-items", action="store_true", help="leave the per-item entries out of the result")
    parser.add_argument("--answer-parser", choices=ANSWER_PARSERS, default="strict",
                        help="strict: the letter in <answer>; teacher: the teacher answer parser (unreadable = wrong)")


def run(args) -> int:
    result = score(read_records(args.records), read_predictions(args.predictions), args.answer_parser)
    result.protocol = read_protocol(args.predictions)
    write_json(args.output, result.to_dict(with_items=not args.no_items))
    m = result.metrics
    official = "n/a" if m["official_accuracy"] is None else f"{m['official_accuracy']:.3f}"
    log.info(
        "%s (%s): n=%d strict=%.3f official=%s ife=%.3f logic=%.3f missing_media=%.3f no_prediction=%.3f",
        result.benchmark, result.protocol.name if result.protocol else "protocol not recorded", m["n"], m["accuracy"], official, m["ife_rate"], m["logic_error_rate"],
        m["missing_media_rate"], m["no_prediction_rate"],
    )
    return 0
