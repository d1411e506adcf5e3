"""What the gateway and the sample chatbot both need, below either of them: importing it pulls in neither."""
