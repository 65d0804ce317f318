// A few questions in SQuAD's form (a passage and a question answered by a span of it), written for this page.

export const EXAMPLES = [
  {
    title: "Lighthouse",
    question: "When was the lighthouse first lit?",
    context: "The lighthouse at Cape Morrow was built of local granite between 1851 and 1854. It was first lit on " +
      "1 March 1855 and was automated in 1987, when its last keeper retired.",
  },
  {
    title: "Photosynthesis",
    question: "What gas do plants release during photosynthesis?",
    context: "Photosynthesis is the process by which green plants use sunlight to turn water and carbon dioxide " +
      "into glucose. Oxygen is released as a by-product, and the glucose is stored as starch.",
  },
  {
    title: "Harbour",
    question: "Who stood on the deck of the ship?",
    context: "The ship came into the harbour at dawn. The captain stood on the deck of the ship while the crew " +
      "made the ropes fast, and Edmond looked at the sea.",
  },
  {
    title: "Printing press",
    question: "In which city did Gutenberg set up his printing press?",
    context: "Johannes Gutenberg, a goldsmith, set up a printing press with movable metal type in Mainz around " +
      "1450. His Bible, printed in about 180 copies, was finished by 1455.",
  },
];
