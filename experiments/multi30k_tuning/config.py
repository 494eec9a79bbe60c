r"""Multi30k De->En: one change at a time on top of multi30k_gru_attention_tuned
(the tutorial's shape, bidirectional GRU 512 + additive attention, with label
smoothing 0.1 and the halving learning rate; test BLEU 37.15 lower-cased at
beam 5), each arm decoded greedy and beam 5 and keeping its last 4 epochs for
`--checkpoint average`:

  arm        change
  tuned      none (multi30k_gru_attention_tuned itself)
  lstm       LSTM encoder and decoder instead of the GRU
  subwords   SentencePiece unigram pieces per language (5,000 each, trained on
             the training split, saved in the run's workdir) instead of
             lower-cased words of min count 2 with <unk>
  dropout03  dropout 0.3 instead of 0.5 (seeds 1234 and 1)
  dropout02  dropout 0.2
  tied       the decoder's output layer through its target embedding
  subwords_dropout03  subwords and dropout 0.3 together (seeds 1234 and 1)
  subwords_dropout02  subwords and dropout 0.2
  subwords_dropout03_12ep  subwords_dropout03 for 12 epochs, the learning rate
             halved each epoch after the 7th instead of the 5th

  python -m rnnlm_jax.experiment sweep experiments/multi30k_tuning
  python -m rnnlm_jax.experiment sweep experiments/multi30k_tuning --arms subwords
  python -m rnnlm_jax.experiment sweep experiments/multi30k_tuning --smoke  # seconds per arm
  python scripts/tune_length_penalty.py --workdir <arm's workdir> --alphas 0.6,1.0,1.4 \
      --split valid [--checkpoint average]

Hardware and time: 2-vCPU CPU (jax 0.10.2), ~7 min per epoch for one arm
alone, 2.0-2.3 h for two arms run at once. Expected test BLEU (lower-cased,
beam 5, alpha 1.0): tuned 37.15, lstm 36.31, dropout03 37.38 (seed 1: 37.58),
dropout02 37.72, tied 34.71, subwords 37.96, subwords_dropout03 38.36
(seed 1: 38.57; at alpha 1.8, chosen on valid: 38.58 and 38.78); as
ensembles, tuned + lstm 37.30, the two dropout03 seeds 38.80, those two +
dropout02 39.20, the two subword arms 38.93, the two subwords_dropout03 seeds
40.10 (alpha 1.8), those two + subwords_dropout02 40.75 (alpha 1.8);
subwords_dropout02 alone 38.00 (38.29 at alpha 1.8); subwords_dropout03_12ep
39.37 (39.34 at alpha 1.8, chosen on valid), and as a fourth member of the
three-subword ensemble 40.47 (alpha 1.8). Per-epoch figures: README.md.
"""

from rnnlm_jax import recipes

ARMS = {
    'tuned': {},
    'lstm': {'model.seq2seq.encoder_cell': 'lstm',
             'model.seq2seq.decoder_cell': 'lstm'},
    'subwords': {'data.paired.tokenizer': 'sentencepiece',
                 'data.paired.spm_vocab_size': 5000},
    'dropout03': {'model.dropout': 0.3},
    'dropout02': {'model.dropout': 0.2},
    'tied': {'model.tie_embeddings': True},
}
ARMS['subwords_dropout03'] = {**ARMS['subwords'], **ARMS['dropout03']}
ARMS['subwords_dropout02'] = {**ARMS['subwords'], **ARMS['dropout02']}
# Two more epochs at the full rate before the same five halvings: both seeds
# of subwords_dropout03 were still improving when the decay began.
ARMS['subwords_dropout03_12ep'] = {**ARMS['subwords_dropout03'],
                                   'train.num_epochs': 12,
                                   'train.decay_start_epoch': 7}
# --smoke: multi30k's tiny model; SentencePiece small enough for 64 pairs.
SMOKE = {**recipes.MULTI30K_SMOKE, 'data.paired.spm_vocab_size': 120}


def get_config():
  return recipes.multi30k_tuned()


def sweep():
  # dropout03 and subwords_dropout03 also at a second seed: their seed
  # spread, and like-for-like second members for an ensemble.
  return list(ARMS.items()) + [
      (arm, {**ARMS[arm], 'seed': 1}) for arm in ('dropout03', 'subwords_dropout03')]
