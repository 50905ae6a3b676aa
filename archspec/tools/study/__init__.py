"""Population studies: train the members of design spaces on Ray and compare their error distributions."""
